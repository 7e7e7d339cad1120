"""The batcher's bounds (``config.PredictionBatch``): texts per pass, texts in line, the wait
for a pass; and a request cancelled while in line (its client left) is computed by no pass.
Passes are held by the test (``held_passes``), so what waits when does not hang on timing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest

from held_passes import HeldPredictor
from learnloop.config import PredictionBatch
from learnloop.errors import OverloadedError
from learnloop.families.base import FloatArray
from learnloop.routing.batching import Answer, PredictionBatcher


class Fixed:
    """Answers "1" with 0.75 for every text."""

    labels = ("0", "1")

    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        return np.tile([0.25, 0.75], (len(texts), 1))

    def predict_one(self, text: str) -> tuple[str, dict[str, float]]:
        return "1", {"0": 0.25, "1": 0.75}


ANSWER: Answer = ("1", {"0": 0.25, "1": 0.75})


async def first_pass_held(batcher: PredictionBatcher, predictor: HeldPredictor) -> asyncio.Task[Answer]:
    """A first request whose pass has started and is held: the texts asked next wait in line."""
    predictor.holds.hold()
    first = asyncio.ensure_future(batcher.predict_one(predictor, "first"))
    await asyncio.to_thread(predictor.holds.wait_started)
    return first


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def test_texts_that_wait_go_in_the_next_passes_at_most_max_texts_each() -> None:
    batcher = PredictionBatcher(PredictionBatch(max_texts=3))
    predictor = HeldPredictor(Fixed())

    async def scenario() -> None:
        first = await first_pass_held(batcher, predictor)
        rest = [asyncio.ensure_future(batcher.predict_one(predictor, f"t{i}")) for i in range(5)]
        await settle()
        assert batcher.waiting == 5
        predictor.holds.release()
        assert await first == ANSWER
        assert await asyncio.gather(*rest) == [ANSWER] * 5

    try:
        asyncio.run(scenario())
    finally:
        batcher.close()
    assert predictor.holds.passes == [["first"], ["t0", "t1", "t2"], ["t3", "t4"]]
    assert (batcher.batches, batcher.texts, batcher.waiting, batcher.refused) == (3, 6, 0, 0)


def test_a_text_beyond_the_line_is_refused_at_once() -> None:
    batcher = PredictionBatcher(PredictionBatch(max_waiting=2))
    predictor = HeldPredictor(Fixed())

    async def scenario() -> None:
        first = await first_pass_held(batcher, predictor)  # in its pass: not waiting
        waiting = [asyncio.ensure_future(batcher.predict_one(predictor, f"t{i}")) for i in range(2)]
        await settle()
        with pytest.raises(OverloadedError) as refused:
            await batcher.predict_one(predictor, "one too many")
        assert refused.value.retry_after == 1.0 and "2 predictions are waiting" in refused.value.message
        predictor.holds.release()
        assert await first == ANSWER
        assert await asyncio.gather(*waiting) == [ANSWER] * 2
        assert await batcher.predict_one(predictor, "room again") == ANSWER

    try:
        asyncio.run(scenario())
    finally:
        batcher.close()
    assert all("one too many" not in texts for texts in predictor.holds.passes)
    assert (batcher.refused, batcher.waiting) == (1, 0)


def test_a_text_whose_pass_does_not_start_in_time_is_refused_and_not_computed() -> None:
    batcher = PredictionBatcher(PredictionBatch(wait_seconds=0.01))
    predictor = HeldPredictor(Fixed())

    async def scenario() -> None:
        first = await first_pass_held(batcher, predictor)  # held until the late one is refused
        with pytest.raises(OverloadedError, match=r"within 0\.01 s"):
            await batcher.predict_one(predictor, "late")
        assert batcher.waiting == 0
        predictor.holds.release()
        assert await first == ANSWER  # a text taken into a pass is never refused

    try:
        asyncio.run(scenario())
    finally:
        batcher.close()
    assert predictor.holds.passes == [["first"]]
    assert batcher.refused == 1


def test_a_request_cancelled_in_line_is_dropped_before_its_pass() -> None:
    """Its client left (the request's task is cancelled): no pass computes its text, and it no
    longer counts against the line."""
    batcher = PredictionBatcher()
    predictor = HeldPredictor(Fixed())

    async def scenario() -> None:
        first = await first_pass_held(batcher, predictor)
        stays = asyncio.ensure_future(batcher.predict_one(predictor, "stays"))
        leaves = asyncio.ensure_future(batcher.predict_one(predictor, "leaves"))
        await settle()
        assert batcher.waiting == 2
        leaves.cancel()
        await settle()
        assert leaves.cancelled() and batcher.waiting == 1
        predictor.holds.release()
        assert await first == ANSWER
        assert await stays == ANSWER

    try:
        asyncio.run(scenario())
    finally:
        batcher.close()
    assert predictor.holds.passes == [["first"], ["stays"]]
    assert (batcher.waiting, batcher.refused) == (0, 0)
