"""Request rates: token buckets, one per credential (and per subject for feedback).

A bucket holds ``rate.limit`` tokens and refills at ``rate.per_second``; a request takes one
(a feedback batch one per event of a subject) or is refused with the wait until one is back.
``LocalBuckets`` live in this process; ``RedisBuckets`` (the ``redis`` extra, ``--redis-url``)
keep them in Redis, updated by one Lua script on Redis's own clock, so every replica draws on
one budget. While Redis cannot be reached, each replica falls back to its own buckets (and
says so in its log once a minute) rather than refuse or wave through everything.

**The local reserve.** A round trip to Redis on every request cost a third of predict's
requests/s (``bench/auth_bench.py``), so a replica takes up to ``reserve_size(rate)`` tokens at
once (the script grants what the bucket holds, down to the request's own cost) and spends them
here until they run out or are ``RESERVE_MAX_AGE`` old (then dropped, not returned). Tokens come
out of the shared bucket before they are spent, so no window ever admits more than the exact
bucket would plus what the replicas held at its start: at most ``replicas x (reserve - 1)``
requests over, and at most as many under (tokens one replica holds while another is refused, or
drops). The reserve is at most 5% of the burst and 0.1 s of the rate, 100 tokens at most; a slow
rate (under 20/s or a burst under 40) has a reserve of one, which is the exact shared bucket.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

from learnloop.domain import Rate
from learnloop.errors import LearnloopError, MissingExtraError

log = logging.getLogger(__name__)

MAX_LOCAL_BUCKETS = 100_000
KEY_PREFIX = "learnloop:rate:"
RESERVE_OF_BURST = 0.05  # a replica holds at most this share of a bucket's burst ...
RESERVE_SECONDS = 0.1  # ... and of this many seconds of its rate ...
MAX_RESERVE = 100  # ... and never more tokens than this
RESERVE_MAX_AGE = 1.0  # seconds: tokens held longer are dropped (the headers stay current)


@dataclass(frozen=True)
class Decision:
    """One take from a bucket: allowed or not, and what the ``RateLimit-*`` headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float  # until the bucket is full again
    retry_after: float  # until a refused request may be retried (0 when allowed)

    @classmethod
    def of(cls, rate: Rate, tokens: float, allowed: bool, cost: int) -> Decision:
        return cls(
            allowed,
            rate.limit,
            max(0, math.floor(tokens)),
            max(0.0, (rate.limit - tokens) / rate.per_second),
            0.0 if allowed else max(0.0, (cost - tokens) / rate.per_second),
        )

    def headers(self) -> list[tuple[bytes, bytes]]:
        """``RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (IETF httpapi draft), in seconds."""
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(math.ceil(self.reset_seconds)).encode()),
        ]


class RateLimitedError(LearnloopError):
    """A credential (or a subject) is over its rate: 429 with Retry-After."""

    code = "rate_limited"

    def __init__(self, message: str, decision: Decision) -> None:
        super().__init__(message)
        self.decision = decision
        self.retry_after = decision.retry_after


class Buckets(Protocol):
    async def take(self, name: str, rate: Rate, cost: int = 1) -> Decision: ...

    async def aclose(self) -> None: ...


class LocalBuckets:
    """Buckets in this process: a dict of (tokens, time), the least recently used dropped past
    ``MAX_LOCAL_BUCKETS`` (a dropped bucket comes back full)."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take_now(self, name: str, rate: Rate, cost: int = 1) -> Decision:
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.pop(name, (float(rate.limit), now))
            tokens = min(float(rate.limit), tokens + (now - then) * rate.per_second)
            allowed = tokens >= cost
            if allowed:
                tokens -= cost
            self._buckets[name] = (tokens, now)
            if len(self._buckets) > MAX_LOCAL_BUCKETS:
                self._buckets.popitem(last=False)
        return Decision.of(rate, tokens, allowed, cost)

    async def take(self, name: str, rate: Rate, cost: int = 1) -> Decision:
        return self.take_now(name, rate, cost)

    async def aclose(self) -> None:
        return None


def reserve_size(rate: Rate) -> int:
    """How many tokens a replica takes from Redis at once for this rate (``1``: every request
    goes to Redis)."""
    share = min(rate.limit * RESERVE_OF_BURST, rate.per_second * RESERVE_SECONDS, MAX_RESERVE)
    return max(1, math.floor(share))


# KEYS[1]: the bucket; ARGV: capacity, tokens per millisecond, cost, wanted (>= cost). Grants the
# wanted tokens, or what the bucket holds if at least the cost, else none. Returns {granted,
# tokens left} (tokens as a string: Redis truncates a Lua number to an integer).
TAKE_SCRIPT = """
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local wanted = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * per_ms)
local granted = 0
if tokens >= cost then
  granted = math.min(wanted, math.floor(tokens))
  tokens = tokens - granted
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_ms) + 1000)
return {granted, tostring(tokens)}
"""


@dataclass
class _Reserve:
    """Tokens this replica took from a shared bucket and has not spent yet (none after a
    refusal), and what the shared bucket held then."""

    tokens: int
    shared: float
    taken_at: float  # time.monotonic()


class RedisBuckets:
    """Buckets in Redis, shared by every replica that names the same URL, drawn on through a
    local reserve (module docstring). The asyncio client is made on first use, in the event
    loop that serves requests."""

    def __init__(self, url: str, fallback: LocalBuckets) -> None:
        try:
            import redis.asyncio  # noqa: F401  (checked now: a missing extra is a start-up error)
        except ImportError:  # pragma: no cover - the test extra installs it
            raise MissingExtraError(
                "rate limits shared through Redis need the redis client: pip install 'learnloop[redis]'", extra="redis"
            ) from None
        self.url = url
        self.fallback = fallback
        self.round_trips = 0  # scripts run in Redis (the reserve's effect, for tests and benches)
        self._client: Any = None
        self._script: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._warned = 0.0
        self._reserves: dict[str, _Reserve] = {}
        self._refills: dict[str, asyncio.Future[None]] = {}  # a refill under way, per bucket

    def _connect(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            import redis.asyncio

            self._client = redis.asyncio.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
            self._script = self._client.register_script(TAKE_SCRIPT)
            self._loop = loop
            self._reserves.clear()
            self._refills.clear()
        return self._script

    async def take(self, name: str, rate: Rate, cost: int = 1) -> Decision:
        size = reserve_size(rate)
        while True:
            held = self._spend(name, rate, cost)
            if held is not None:
                return held
            under_way = self._refills.get(name)
            if under_way is None or under_way.get_loop() is not asyncio.get_running_loop():
                break
            await asyncio.shield(under_way)  # one refill at a time per bucket; then spend from it
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._refills[name] = done
        try:
            return await self._refill(name, rate, cost, max(cost, size))
        finally:
            self._refills.pop(name, None)
            done.set_result(None)

    def _spend(self, name: str, rate: Rate, cost: int) -> Decision | None:
        """Spend held tokens, or refuse here when the shared bucket cannot have refilled since
        Redis last said how much it held (tokens only come back at the rate; other replicas
        only take): exact, and a flood over the limit costs no round trips. None: ask Redis."""
        held = self._reserves.get(name)
        if held is None:
            return None
        age = time.monotonic() - held.taken_at
        if held.tokens >= cost and age <= RESERVE_MAX_AGE:
            held.tokens -= cost
            return Decision.of(rate, held.shared + held.tokens, True, cost)
        shared = min(float(rate.limit), held.shared + age * rate.per_second)  # at most this now
        if shared < cost:
            return Decision.of(rate, shared, False, cost)
        del self._reserves[name]  # what is left is dropped, never returned (module docstring)
        return None

    async def _refill(self, name: str, rate: Rate, cost: int, wanted: int) -> Decision:
        try:
            script = self._connect()
            self.round_trips += 1
            args = [rate.limit, rate.per_second / 1000.0, cost, wanted]
            granted, tokens = await script(keys=[KEY_PREFIX + name], args=args)
        except Exception as exc:  # Redis down or slow: this replica's own buckets meanwhile
            now = time.monotonic()
            if now - self._warned >= 60:
                self._warned = now
                log.warning("rate limits: Redis unreachable (%s); limiting per replica meanwhile", type(exc).__name__)
            return self.fallback.take_now(name, rate, cost)
        granted, shared = int(granted), float(tokens)
        if len(self._reserves) >= MAX_LOCAL_BUCKETS:
            self._reserves.clear()
        self._reserves[name] = _Reserve(max(0, granted - cost), shared, time.monotonic())
        return Decision.of(rate, shared + max(0, granted - cost), granted >= cost, cost)

    async def aclose(self) -> None:
        self._reserves.clear()
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


def buckets_for(redis_url: str | None) -> Buckets:
    local = LocalBuckets()
    return RedisBuckets(redis_url, local) if redis_url else local
