"""Admission control's parts: which class a request is, the slots and their waiting line, and
the event loop's lag (the queue a handler that never awaits leaves behind)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest

from held_passes import HeldPredictor
from learnloop.api.admission import AdmissionControl, Gate, LoopLag, RouteClass, classify, single_prediction_model
from learnloop.config import Admission, RouteLimit
from learnloop.domain import Model, Strategy
from learnloop.routing.cache import LiveRollout, LoadedVersion, ModelCache, Route


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1/models/m/predict", RouteClass.PREDICT),
        ("POST", "/v1/models/m/predict/batch", RouteClass.PREDICT),
        ("POST", "/v1/models/m/feedback", RouteClass.FEEDBACK),
        ("POST", "/v1/models/m/feedback/batch", RouteClass.FEEDBACK),
        ("GET", "/v1/models/m/feedback/abc", RouteClass.ADMIN),
        ("POST", "/v1/models/m/generations", RouteClass.PREDICT),  # logging an answer made elsewhere
        ("POST", "/v1/models/m/generations/batch", RouteClass.PREDICT),
        ("POST", "/v1/models/m/generate", RouteClass.GENERATE),
        ("POST", "/v1/models/m/generate/stream", RouteClass.GENERATE),
        ("POST", "/openai/v1/chat/completions", RouteClass.GENERATE),
        ("POST", "/v1/models/predict/retrain", RouteClass.ADMIN),  # a model named "predict"
        ("GET", "/v1/models/m", RouteClass.ADMIN),
        ("GET", "/v1/models/generate", RouteClass.ADMIN),  # a model named "generate"
        ("GET", "/dashboard", RouteClass.ADMIN),
        ("GET", "/health", None),
        ("GET", "/ready", None),
        ("GET", "/metrics", None),
    ],
)
def test_requests_are_classed_by_method_and_path(method: str, path: str, expected: RouteClass | None) -> None:
    assert classify(method, path) == expected


def test_a_free_slot_is_taken_at_once_and_a_full_line_refuses() -> None:
    async def scenario() -> None:
        gate = Gate(RouteLimit(concurrency=1, queue=1, queue_seconds=5))
        assert gate.try_enter()
        assert not gate.try_enter()
        waiting = asyncio.ensure_future(gate.wait(5))
        await asyncio.sleep(0)
        assert gate.waiting == 1
        assert not await gate.wait(5)  # the line (1) is full: refused without waiting
        gate.leave()  # the slot passes to the waiter, not back to the pool
        assert await waiting
        assert (gate.active, gate.waiting) == (1, 0)
        gate.leave()
        assert gate.active == 0

    asyncio.run(scenario())


def test_waiters_are_served_first_come_first_served() -> None:
    async def scenario() -> None:
        gate = Gate(RouteLimit(concurrency=1, queue=10, queue_seconds=5))
        assert gate.try_enter()
        order: list[int] = []

        async def wait(i: int) -> None:
            assert await gate.wait(5)
            order.append(i)
            gate.leave()

        tasks = [asyncio.ensure_future(wait(i)) for i in range(5)]
        await asyncio.sleep(0)
        assert not gate.try_enter()  # waiters go first
        gate.leave()
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2, 3, 4]
        assert (gate.active, gate.waiting) == (0, 0)

    asyncio.run(scenario())


def test_a_waiter_whose_time_runs_out_leaves_the_line() -> None:
    async def scenario() -> None:
        gate = Gate(RouteLimit(concurrency=1, queue=1, queue_seconds=5))
        assert gate.try_enter()
        assert not await gate.wait(0.01)
        assert gate.waiting == 0
        assert await asyncio.wait_for(_after_leave(gate), 5)  # the line has room again

    asyncio.run(scenario())


async def _after_leave(gate: Gate) -> bool:
    waiting = asyncio.ensure_future(gate.wait(5))
    await asyncio.sleep(0)
    gate.leave()
    return await waiting


def test_a_cancelled_waiter_gives_its_place_up() -> None:
    async def scenario() -> None:
        gate = Gate(RouteLimit(concurrency=1, queue=2, queue_seconds=5))
        assert gate.try_enter()
        first = asyncio.ensure_future(gate.wait(5))
        second = asyncio.ensure_future(gate.wait(5))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        assert gate.waiting == 1
        gate.leave()
        assert await second  # the slot skips the cancelled waiter
        gate.leave()
        assert (gate.active, gate.waiting) == (0, 0)

    asyncio.run(scenario())


class ManualTimer:
    """The event loop as ``LoopLag`` sees it (``call_later``), with a clock the test moves: the
    probe fires when the test says, so lateness is exact whatever the machine's load."""

    def __init__(self) -> None:
        self.now = 0.0
        self.due: tuple[Callable[..., object], tuple[object, ...]] | None = None

    def call_later(self, delay: float, callback: Callable[..., object], *args: object) -> ManualTimer:
        self.due = (callback, args)
        return self

    def cancel(self) -> None:
        self.due = None

    def hold(self, seconds: float) -> None:
        """A handler that never awaits holds the loop this long."""
        self.now += seconds

    def fire(self) -> None:
        """The loop gets round to the probe's timer, late by however long it was held."""
        assert self.due is not None
        callback, args = self.due
        callback(*args)


def manual_control(limit: RouteLimit, batching: frozenset[str] = frozenset()) -> tuple[AdmissionControl, ManualTimer]:
    timer = ManualTimer()
    control = AdmissionControl(
        Admission(predict=limit),
        lag=LoopLag(interval=0.005, clock=lambda: timer.now),
        batches=batching.__contains__,
    )
    control.start(cast(asyncio.AbstractEventLoop, timer))
    return control, timer


def admit(control: AdmissionControl, cls: RouteClass, batched_model: str | None = None) -> str | None:
    refused = asyncio.run(control.admit(cls, batched_model))
    if refused is None:
        control.release(cls)
    return refused


def test_an_event_loop_that_keeps_running_late_refuses_a_class_that_cannot_wait() -> None:
    control, timer = manual_control(RouteLimit(concurrency=8, queue=8, queue_seconds=0.02))
    timer.hold(0.005)
    timer.fire()  # on time
    timer.hold(0.1)
    assert control.lag.seconds() == pytest.approx(0.095)
    timer.fire()  # late by 0.095 (due 0.005 after the last firing)
    timer.hold(0.1)  # and the loop is held again: a standing queue
    assert control.lag.sustained() == pytest.approx(0.095)
    assert admit(control, RouteClass.PREDICT) == "busy"
    assert admit(control, RouteClass.FEEDBACK) is None  # its queue_seconds is longer
    control.stop()
    assert control.lag.seconds() == 0.0  # not measured once stopped


def test_one_stall_of_the_event_loop_is_not_overload() -> None:
    """A request that waited through one stall (a collection, a thread holding the GIL while a
    model loads) is served: refusing it would turn a hiccup into an error for a lone client."""
    control, timer = manual_control(RouteLimit(concurrency=8, queue=8, queue_seconds=0.02))
    timer.hold(0.005)
    timer.fire()
    timer.hold(0.1)
    assert control.lag.seconds() == pytest.approx(0.095)  # late now, but the probe was on time before
    assert control.lag.sustained() == 0.0
    assert admit(control, RouteClass.PREDICT) is None
    timer.fire()  # the probe fires late once
    timer.hold(0.005)
    timer.fire()  # then keeps time again
    assert control.lag.sustained() == 0.0
    assert admit(control, RouteClass.PREDICT) is None


@pytest.mark.parametrize(
    ("method", "path", "model"),
    [
        ("POST", "/v1/models/m/predict", "m"),
        ("POST", "/v1/models/m/predict/batch", None),  # answered on the loop, not by the batcher
        ("GET", "/v1/models/m/predict", None),
        ("POST", "/v1/models/m/feedback", None),
        ("POST", "/v1/models//predict", None),
        ("POST", "/v1/models/m/x/predict", None),
    ],
)
def test_a_single_text_prediction_names_its_model(method: str, path: str, model: str | None) -> None:
    assert single_prediction_model(method, path) == model


def running_late(control: AdmissionControl, timer: ManualTimer) -> None:
    """The loop keeps running 95 ms late: a standing queue as the lag rule sees it."""
    timer.hold(0.005)
    timer.fire()
    timer.hold(0.1)
    timer.fire()
    timer.hold(0.1)
    assert control.lag.sustained() == pytest.approx(0.095)


def test_a_prediction_of_a_batching_model_is_not_refused_for_the_loops_lag() -> None:
    """Its request waits in the batcher, which bounds the wait itself; the loop's lag there is
    the pass holding the GIL, or the process waiting for a core, not a queue of requests."""
    control, timer = manual_control(RouteLimit(concurrency=8, queue=8, queue_seconds=0.02), frozenset({"enc"}))
    running_late(control, timer)
    assert admit(control, RouteClass.PREDICT, "enc") is None
    assert admit(control, RouteClass.PREDICT, "tfidf") == "busy"  # its versions answer on the loop
    assert admit(control, RouteClass.PREDICT) == "busy"  # a batch of texts, even of "enc"


def test_a_prediction_of_a_batching_model_is_still_bounded_by_its_slots() -> None:
    control, timer = manual_control(RouteLimit(concurrency=1, queue=0, queue_seconds=0.02), frozenset({"enc"}))
    running_late(control, timer)

    async def scenario() -> None:
        assert await control.admit(RouteClass.PREDICT, "enc") is None  # the only slot
        assert await control.admit(RouteClass.PREDICT, "enc") == "full"
        control.release(RouteClass.PREDICT)
        assert await control.admit(RouteClass.PREDICT, "enc") is None
        control.release(RouteClass.PREDICT)

    asyncio.run(scenario())


class _Plain:
    """A predictor that answers on the event loop (no ``BatchedPrediction``)."""

    labels = ("0", "1")


def test_a_model_batches_when_every_version_that_may_answer_it_batches() -> None:
    plain = cast(Any, _Plain())
    held = LoadedVersion(1, predictor=HeldPredictor(plain))
    other = LoadedVersion(2, predictor=plain)
    model = cast(Model, None)  # the rule reads the versions only
    cache = ModelCache(cast(Any, None), cast(Any, None))

    def batches(route: Route) -> bool:
        cache._routes["m"] = route
        return cache.batches("m")

    assert batches(Route(model, 1, held, previous=other))  # the previous version answers nothing
    assert not batches(Route(model, 1, other, previous=None))
    assert not batches(Route(model, 1, None, previous=None, error="refuses to load"))
    for strategy in Strategy:
        assert not batches(Route(model, 1, held, None, rollout=LiveRollout(1, strategy, 0.1, held, other)))
        assert batches(Route(model, 1, held, None, rollout=LiveRollout(1, strategy, 0.1, held, held)))
    assert not cache.batches("not loaded")  # its first request loads it, under the lag rule
