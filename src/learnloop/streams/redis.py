"""Redis Streams: a consumer group.

Each entry carries the event's JSON in its ``data`` field. The group is made (from the
stream's start) if missing. A consumer, named by ``consumer``, first reads back the entries
it was given and never acknowledged (after a crash, with the same name), then new ones, so
order is kept; entries are acknowledged with ``XACK`` once stored. A consumer that died and
never came back under its name would strand its pending entries: every ``claim_idle``
seconds a consumer takes over (``XAUTOCLAIM``) the group's entries pending that long with
anyone, and stores them like its own. A consumer that finds entries pending with others when
it connects (a predecessor under another name: a new host) reads nothing new until they are
acknowledged or it has claimed them, so a user's later events do not overtake earlier ones. Dead letters are appended
to the stream ``<stream>:dead`` with the fields ``data``, ``code``, ``reason`` and ``id`` (the
original entry's).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from learnloop.streams.consumer import Delivery, Hold
from learnloop.streams.intake import Refusal

FIELD = b"data"
CLAIM_MARGIN = 0.2  # seconds past claim_idle before a gone consumer's entries are surely claimable


class RedisSource:
    def __init__(self, url: str, stream: str, group: str, consumer: str, *, claim_idle: float = 30.0) -> None:
        self.url = url
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.dead_stream = f"{stream}:dead"
        self.description = f"Redis {url} stream {stream} (group {group}, consumer {consumer})"
        self._redis: Any = None
        self._backlog = True  # entries delivered to this consumer before and never acknowledged
        self.claim_idle = claim_idle
        self._next_claim = 0.0  # time.monotonic() of the next look for a dead consumer's entries
        self._claim_from = "0-0"
        self._hold = Hold()

    async def connect(self) -> None:
        import redis.asyncio as aioredis
        from redis.exceptions import ResponseError

        self._redis = aioredis.from_url(self.url, socket_connect_timeout=2)
        try:
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._backlog = True
        self._hold = Hold()
        if await self._held():
            self._hold.start(self.claim_idle + CLAIM_MARGIN)

    async def fetch(self, max_items: int, wait: float) -> list[Delivery]:
        if self._backlog:
            entries = await self._read("0", max_items, None)
            if entries:
                return entries
            self._backlog = False
        if self._hold.until:
            if await self._hold.waiting(wait, self._held):
                return []
            self._next_claim = 0.0  # claim what is due before reading anything new
        if time.monotonic() >= self._next_claim:
            claimed = await self._claim(max_items)
            if claimed:
                return claimed
        return await self._read(">", max_items, max(1, int(wait * 1000)))

    async def _held(self) -> bool:
        """Entries of the group pending with consumers other than this one?"""
        summary = await self._redis.xpending(self.stream, self.group)
        mine = self.consumer.encode()
        return any(c["name"] not in (mine, self.consumer) and c["pending"] for c in summary.get("consumers") or [])

    async def _claim(self, count: int) -> list[Delivery]:
        """Entries pending with any consumer for ``claim_idle`` seconds, now this one's."""
        idle_ms = int(self.claim_idle * 1000)
        answer = await self._redis.xautoclaim(self.stream, self.group, self.consumer, idle_ms, self._claim_from, count)
        self._claim_from = answer[0].decode() if isinstance(answer[0], bytes) else str(answer[0])
        if self._claim_from == "0-0":  # the whole pending list was scanned: look again later
            self._next_claim = time.monotonic() + self.claim_idle / 2
        return _deliveries(answer[1])

    async def _read(self, start: str, count: int, block: int | None) -> list[Delivery]:
        answer = await self._redis.xreadgroup(self.group, self.consumer, {self.stream: start}, count=count, block=block)
        if not answer:
            return []
        _, entries = answer[0]
        return _deliveries(entries)

    async def dead_letter(self, delivery: Delivery, refusal: Refusal) -> None:
        fields = {"data": delivery.data, "code": refusal.code, "reason": refusal.reason, "id": delivery.handle}
        await self._redis.xadd(self.dead_stream, fields)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            await self._redis.xack(self.stream, self.group, *[d.handle for d in deliveries])

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()


def _deliveries(entries: Sequence[Any]) -> list[Delivery]:
    return [Delivery(fields.get(FIELD, b"") if fields else b"", entry_id) for entry_id, fields in entries]
