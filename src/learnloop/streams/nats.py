"""NATS JetStream: a durable pull consumer on a stream.

The stream that holds ``subject`` is used (one is made, file-backed, if none does); the
durable consumer is named by the group, and filters by ``subject`` only where the stream holds
other subjects too (see ``connect``). Every message is acknowledged on its own
(``AckPolicy.EXPLICIT``), the batch's last one synchronously, so the acknowledgements are in
before the next fetch. Not cumulative acknowledgement (``AckPolicy.ALL``): it counts every
message below the acknowledged one, including those a dead consumer was holding, and lost them
(a consumer killed with part of its window fetched; the next one's acknowledgement of newer
messages swallowed the held ones). At most one batch is outstanding (``max_ack_pending``);
after a crash the broker delivers what the dead consumer held again once its ``ack_wait`` has
passed (each event's id makes a second delivery change nothing). Until then newer messages
would come first, and a user's later events would be stored before their earlier ones: a
consumer that finds messages delivered and never acknowledged when it connects
(``num_ack_pending``) fetches nothing new until they are acknowledged or their ``ack_wait``
has passed, when the broker hands them out before anything newer. Dead letters go to the
stream ``<STREAM>_DEAD`` on the subject ``dead.<subject>``, with the reason in the headers
``Learnloop-Error-Code`` and ``Learnloop-Error-Reason``.

Messages are pulled by hand: a pull request (``$JS.API.CONSUMER.MSG.NEXT``) for the batch,
expiring after ``PULL_EXPIRES``, answered on the source's own inbox, whose callback gathers
them until the batch is full or the broker says the request is over (a status message:
404/408/409). nats-py's ``fetch`` waits for every message with its own ``wait_for`` (two
tasks a message): a third of the consumer's CPU per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Sequence
from typing import Any

import orjson

from learnloop.streams.consumer import Delivery, Hold
from learnloop.streams.intake import Refusal

REDELIVERY_MARGIN = 0.2  # seconds past ack_wait before the broker surely has them due again
PULL_EXPIRES = 0.02  # seconds a pull request waits on the broker for its batch to fill
PULL_SLACK = 0.1  # seconds more it waits for the broker to say a request is over, then asks again


def stream_name(subject: str) -> str:
    """A stream name for a subject: ``learnloop.events.>`` -> ``LEARNLOOP_EVENTS``."""
    return re.sub(r"[^A-Za-z0-9]+", "_", _base(subject)).strip("_").upper() or "LEARNLOOP"


def _base(subject: str) -> str:
    return re.sub(r"(\.[*>])+$", "", subject)


class NatsSource:
    def __init__(self, url: str, subject: str, group: str, *, batch: int, ack_wait: float = 30.0) -> None:
        self.url = url
        self.subject = subject
        self.group = group
        self.batch = batch
        self.ack_wait = ack_wait
        self.dead_subject = f"dead.{_base(subject)}"
        self.description = f"NATS {url} subject {subject} (durable {group})"
        self._stream = ""
        self._nc: Any = None
        self._js: Any = None
        self._next = ""
        self._inbox = ""
        self._got: list[Any] = []
        self._want = 0
        self._over = asyncio.Event()
        self._hold = Hold()

    async def connect(self) -> None:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
        from nats.js.errors import NotFoundError

        self._nc = await nats.connect(self.url, allow_reconnect=False, connect_timeout=2)
        self._js = self._nc.jetstream()
        try:
            stream = await self._js.find_stream_name_by_subject(self.subject)
            subjects = (await self._js.stream_info(stream)).config.subjects or []
        except NotFoundError:
            stream, subjects = stream_name(self.subject), [self.subject]
            await self._js.add_stream(StreamConfig(name=stream, subjects=subjects))
        try:
            await self._js.find_stream_name_by_subject(self.dead_subject)
        except NotFoundError:
            await self._js.add_stream(StreamConfig(name=f"{stream}_DEAD", subjects=[self.dead_subject]))
        try:
            await self._js.consumer_info(stream, self.group)
        except NotFoundError:
            config = ConsumerConfig(
                name=self.group,
                durable_name=self.group,
                # A filter only where the stream holds other subjects too: on nats-server 2.9 a
                # filtered consumer, once asked for its info (as every restart does), hands out a
                # pull's messages some 50 times slower (~70 per 20 ms instead of 500 in 4 ms).
                filter_subject=None if subjects == [self.subject] else self.subject,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self.ack_wait,
                max_ack_pending=self.batch,
                max_deliver=-1,
            )
            await self._js.add_consumer(stream, config=config)
        self._stream = stream
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{self.group}"
        self._got, self._want, self._over = [], 0, asyncio.Event()
        self._inbox = self._nc.new_inbox()
        await self._nc.subscribe(self._inbox, cb=self._arrived)
        self._hold = Hold()
        if await self._held():
            self._hold.start(self.ack_wait + REDELIVERY_MARGIN)

    async def fetch(self, max_items: int, wait: float) -> list[Delivery]:
        if self._nc is None or self._nc.is_closed:
            raise ConnectionError("the NATS connection is closed")
        if self._hold.until and await self._hold.waiting(wait, self._held):
            return []
        deadline = time.monotonic() + wait
        while True:
            expires = min(PULL_EXPIRES, max(deadline - time.monotonic(), 0.001))
            messages = await self._pull(max_items, expires)
            if messages or time.monotonic() >= deadline:
                return [Delivery(m.data, m) for m in messages]

    async def _pull(self, max_items: int, expires: float) -> list[Any]:
        """One pull request: what it brought (and any late messages of an earlier one)."""
        want = max_items - len(self._got)
        if want > 0:
            self._want, self._over = max_items, asyncio.Event()
            request = orjson.dumps({"batch": want, "expires": int(expires * 1e9)})
            await self._nc.publish(self._next, request, reply=self._inbox)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._over.wait(), expires + PULL_SLACK)
        got, self._got = self._got[:max_items], self._got[max_items:]
        return got

    async def _arrived(self, msg: Any) -> None:
        status = msg.headers.get("Status") if msg.headers else None
        if status is None:
            self._got.append(msg)
            if len(self._got) >= self._want:
                self._over.set()
        elif status != "100":  # 404 no messages, 408 expired, 409 (max waiting, ...): over
            self._over.set()

    async def _held(self) -> bool:
        """Messages delivered to the durable consumer and never acknowledged?"""
        return bool((await self._js.consumer_info(self._stream, self.group)).num_ack_pending)

    async def dead_letter(self, delivery: Delivery, refusal: Refusal) -> None:
        headers = {
            "Learnloop-Error-Code": refusal.code,
            "Learnloop-Error-Reason": _header(refusal.reason),
            "Learnloop-Subject": delivery.handle.subject,
        }
        await self._js.publish(self.dead_subject, delivery.data, headers=headers)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        for delivery in deliveries[:-1]:
            await delivery.handle.ack()
        await deliveries[-1].handle.ack_sync()  # the connection keeps order: all of them are in

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            await nc.close()


def _header(text: str) -> str:
    """A header value: one line."""
    return " ".join(text.split())[:1024]
