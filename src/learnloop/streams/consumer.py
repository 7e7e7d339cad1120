"""The intake consumer's loop, the same for every broker.

Fetch a batch from the ``Source`` -> ``StreamIntake.handle`` (committed to the store) ->
publish each refused message to the source's dead letters, with its reason -> acknowledge the
batch. Acknowledged only after the commit: a consumer killed at any point leaves the batch
unacknowledged, the broker delivers it again, and the events' ids make the second delivery
change nothing (at least once, stored exactly once).

Trouble with the store (down, busy) retries the same batch, holding it, with backoff; a lost
broker connection is closed and opened again with backoff. Neither loses a message: the
broker keeps what was never acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from learnloop.retry import RetryPolicy
from learnloop.streams.intake import Refusal, StreamIntake

log = logging.getLogger(__name__)

# Never give up: about 0.2, 0.4, ... up to 10 s between tries, for as long as it takes.
BACKOFF = RetryPolicy(base=0.2, factor=2.0, cap=10.0, max_attempts=2**31, jitter=0.2)


@dataclass(frozen=True)
class Delivery:
    """One message as a broker handed it: its bytes and the broker's own handle on it."""

    data: bytes
    handle: Any = None


class Source(Protocol):
    """A broker's side of the loop (``streams/nats.py``, ``rabbitmq.py``, ``redis.py``, ``kafka.py``)."""

    description: str

    async def connect(self) -> None:
        """Connect, and make the durable consumer, queue or group (and the dead letters') if missing."""

    async def fetch(self, max_items: int, wait: float) -> list[Delivery]:
        """Up to ``max_items`` messages in the stream's order, waiting at most ``wait`` seconds
        for the first; those delivered before and never acknowledged come again (first on
        RabbitMQ and Redis; on NATS once their ``ack_wait`` has passed)."""

    async def dead_letter(self, delivery: Delivery, refusal: Refusal) -> None:
        """Publish the message, with the refusal's code and reason, to the dead letters (durably)."""

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge: the broker will not deliver these again."""

    async def close(self) -> None: ...


@dataclass
class Hold:
    """A source's hold on newer messages while older ones a gone consumer was given and never
    acknowledged are not yet due to come back to this one (NATS, Redis): fetched first, the
    newer ones would overtake them, and a user's later events be stored before earlier ones."""

    until: float = 0.0  # time.monotonic() by which the held messages are due again

    def start(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    async def waiting(self, wait: float, held: Callable[[], Awaitable[bool]]) -> bool:
        """True, after waiting up to ``wait`` seconds, while the hold is on and ``held()``;
        False once the held messages are acknowledged or due (the hold is then off)."""
        remaining = self.until - time.monotonic()
        if remaining > 0 and await held():
            await asyncio.sleep(min(wait, remaining))
            return True
        self.until = 0.0
        return False


@dataclass
class ConsumerStats:
    stored: int = 0
    dead_lettered: int = 0
    batches: int = 0
    reconnects: int = 0
    store_retries: int = 0


@dataclass
class StreamConsumer:
    source: Source
    intake: StreamIntake
    batch: int = 1_000
    wait: float = 0.5
    stats: ConsumerStats = field(default_factory=ConsumerStats)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _rng: random.Random = field(default_factory=random.Random)

    def stop(self) -> None:
        self._stop.set()

    async def run(self, *, until_idle: bool = False) -> ConsumerStats:
        """Consume until ``stop()`` (or, with ``until_idle``, until a fetch finds nothing)."""
        attempt = 0
        while not self._stop.is_set():
            try:
                await self.source.connect()
                if attempt:
                    log.info("reconnected to %s", self.source.description)
                attempt = 0
                if await self._consume(until_idle):
                    break
            except Exception as exc:
                if self._stop.is_set():
                    break
                attempt += 1
                self.stats.reconnects += 1
                delay = BACKOFF.delay(attempt, self._rng) or BACKOFF.cap
                log.warning("%s: %s; reconnecting in %.1f s", self.source.description, _say(exc), delay)
                await _close_quietly(self.source)
                await self._sleep(delay)
        await _close_quietly(self.source)
        return self.stats

    async def _consume(self, until_idle: bool) -> bool:
        """Batches until stopped; True once idle (``until_idle``)."""
        while not self._stop.is_set():
            deliveries = await self.source.fetch(self.batch, self.wait)
            if not deliveries:
                if until_idle:
                    return True
                continue
            outcomes = await self._store(deliveries)
            for delivery, outcome in zip(deliveries, outcomes, strict=True):
                if outcome is not None:
                    log.warning("dead letter (%s): %s", outcome.code, outcome.reason)
                    await self.source.dead_letter(delivery, outcome)
            await self.source.ack(deliveries)
            dead = sum(1 for o in outcomes if o is not None)
            self.stats.batches += 1
            self.stats.dead_lettered += dead
            self.stats.stored += len(deliveries) - dead
        return False

    async def _store(self, deliveries: list[Delivery]) -> list[Refusal | None]:
        """The batch committed: the store's trouble is waited out, the batch held meanwhile."""
        attempt = 0
        while True:
            try:
                return await self.intake.handle([d.data for d in deliveries])
            except Exception as exc:
                attempt += 1
                self.stats.store_retries += 1
                delay = BACKOFF.delay(attempt, self._rng) or BACKOFF.cap
                log.warning("storing a batch of %d failed (%s); retrying in %.1f s", len(deliveries), _say(exc), delay)
                await self._sleep(delay)
                if self._stop.is_set():
                    raise

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)


def _say(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


async def _close_quietly(source: Source) -> None:
    try:
        await source.close()
    except Exception as exc:
        log.debug("closing %s: %s", source.description, _say(exc))
