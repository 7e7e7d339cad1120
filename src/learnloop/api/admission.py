"""Admission control: which class a request belongs to, and whether it may start now.

Each route class (``predict``, ``generate``, ``feedback``, ``admin`` for everything else) has
a bound on the requests it handles at once, on how many more may wait for a slot, and on how
long one may wait (``config.RouteLimit``). A request is refused (503 with Retry-After, before
any work is done for it) when

* the event loop is running late by more than its class's ``queue_seconds``, and was already
  that late when its lag probe last fired: requests have been waiting that long behind other
  requests for a while (``LoopLag``). One stall (a collection, another thread holding the GIL
  while a model loads) is not overload: the request that waited through it is served; or
* its class is at its concurrency bound and the waiting line is full, or no slot frees up
  within what is left of ``queue_seconds``.

``/health``, ``/ready`` and ``/metrics`` belong to no class: they are never refused, so a
liveness probe answers however loaded the server is.

A handler that runs on the event loop without awaiting (a prediction) holds its slot only
while it runs; there the event loop's lag is what bounds the queue. Handlers that await (the
feedback group commit, work in a thread) hold their slots while they wait, and the slots
bound them.

One exception, one rule: a single-text prediction (``POST /v1/models/{model}/predict``) of a
model whose every serving version batches (``ModelCache.batches``) skips the loop-lag rule. It
waits in the batcher (``routing/batching.py``), not on the loop, and the batcher bounds that
wait itself (``Limits.prediction_batch``); the loop's lag there is the forward pass holding
the GIL, or the process waiting for a core on a loaded host, not requests queueing. It is
still bounded by its class's slots and line.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

from learnloop.config import Admission, RouteLimit

PROBES = frozenset({"/health", "/ready", "/metrics"})


class RouteClass(StrEnum):
    PREDICT = "predict"
    GENERATE = "generate"
    FEEDBACK = "feedback"
    ADMIN = "admin"


def classify(method: str, path: str) -> RouteClass | None:
    """The class of a request, from its method and path alone (no routing needed); None for
    the probes, which are never refused."""
    if path in PROBES:
        return None
    parts = path.split("/", 6)  # "", "v1", "models", model, action, ...
    if len(parts) > 4 and parts[1] == "v1" and parts[2] == "models":
        action = parts[4]
        if action in ("generate", "chat"):
            return RouteClass.GENERATE
        if method == "POST" and action in ("predict", "generations"):  # logging an answer is like predicting
            return RouteClass.PREDICT
        if method == "POST" and action == "feedback":
            return RouteClass.FEEDBACK
    if path.startswith("/openai/v1/chat/"):  # the OpenAI-compatible chat route
        return RouteClass.GENERATE
    return RouteClass.ADMIN


def single_prediction_model(method: str, path: str) -> str | None:
    """The model of a single-text prediction (``POST /v1/models/{model}/predict``), else None."""
    if method != "POST" or not path.endswith("/predict"):
        return None
    parts = path.split("/")  # "", "v1", "models", model, "predict"
    if len(parts) == 5 and parts[1] == "v1" and parts[2] == "models" and parts[3]:
        return parts[3]
    return None


class LoopLag:
    """How late the event loop is running, measured by a timer that should fire every
    ``interval`` seconds: while the loop is busy, the time since it last fired grows. Costs one
    timer callback per interval; reads are a clock call.

    ``seconds`` is how late the loop is now; ``sustained`` is the lateness it has kept since the
    timer last fired (the smaller of now and that firing's own lateness), the standing queue
    that load leaves, as CoDel judges a queue by its delay over an interval, not at one instant.
    """

    def __init__(self, interval: float = 0.005, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last = clock()
        self._last_late = 0.0  # how late the timer fired last time
        self._handle: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stop()
        self._last = self.clock()
        self._last_late = 0.0
        self._handle = loop.call_later(self.interval, self._tick, loop)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = self.clock()
        self._last_late = max(0.0, now - self._last - self.interval)
        self._last = now
        self._handle = loop.call_later(self.interval, self._tick, loop)

    def seconds(self) -> float:
        """How long the loop has been late; 0 when it is keeping up (or is not measured)."""
        if self._handle is None:
            return 0.0
        return max(0.0, self.clock() - self._last - self.interval)

    def sustained(self) -> float:
        """The lateness the loop has kept across the timer's last firing: 0 after one stall
        between on-time firings, high while requests keep queueing behind one another."""
        return min(self.seconds(), self._last_late)


class Gate:
    """Slots of one route class, and a first-come-first-served line of waiters. A waiter that
    gave up stays in the line until it reaches the front (no O(n) removal); ``waiting``
    counts the live ones."""

    def __init__(self, limit: RouteLimit) -> None:
        self.limit = limit
        self.active = 0
        self.waiting = 0
        self._line: deque[asyncio.Future[bool]] = deque()

    def try_enter(self) -> bool:
        if self.active < self.limit.concurrency and not self.waiting:
            self.active += 1
            return True
        return False

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for a slot; False when the line is full or time runs out."""
        if timeout <= 0 or self.waiting >= self.limit.queue:
            return False
        while self._line and self._line[0].done():
            self._line.popleft()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._line.append(waiter)
        self.waiting += 1
        expiry = loop.call_later(timeout, self._expire, waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if not waiter.done() or waiter.cancelled():
                waiter.cancel()
                self.waiting -= 1  # it gave up while still in line
            elif waiter.result():
                self.leave()  # the slot was handed over as we were cancelled: pass it on
            raise
        finally:
            expiry.cancel()

    def _expire(self, waiter: asyncio.Future[bool]) -> None:
        if not waiter.done():
            waiter.set_result(False)
            self.waiting -= 1

    def leave(self) -> None:
        """Free a slot: hand it to the first live waiter, else give it back."""
        while self._line:
            waiter = self._line.popleft()
            if not waiter.done():
                waiter.set_result(True)
                self.waiting -= 1
                return
        self.active -= 1


class AdmissionControl:
    """The gates of every class and the loop-lag probe, shared by one app's requests.
    ``batches(model)``: whether every version serving ``model`` batches its single-text
    predictions off the event loop (``ModelCache.batches``); by default none does."""

    def __init__(
        self, bounds: Admission, lag: LoopLag | None = None, batches: Callable[[str], bool] | None = None
    ) -> None:
        self.bounds = bounds
        self.lag = lag or LoopLag()
        self.batches = batches or (lambda model: False)
        self.gates = {cls: Gate(getattr(bounds, cls.value)) for cls in RouteClass}

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.lag.start(loop)

    def stop(self) -> None:
        self.lag.stop()

    async def admit(self, cls: RouteClass, batched_model: str | None = None) -> str | None:
        """Take a slot of ``cls``: None when admitted (call ``release`` when done), else the
        reason for refusing: ``"busy"`` (the event loop keeps running late) or ``"full"`` (no
        slot). ``batched_model``: the model of a single-text prediction
        (``single_prediction_model``); when it batches, the loop's lag does not refuse it."""
        gate = self.gates[cls]
        late = 0.0
        if batched_model is None or not self.batches(batched_model):
            if self.lag.sustained() > gate.limit.queue_seconds:
                return "busy"
            late = self.lag.seconds()
        if gate.try_enter():
            return None
        return None if await gate.wait(gate.limit.queue_seconds - late) else "full"

    def release(self, cls: RouteClass) -> None:
        self.gates[cls].leave()
