"""Concurrent single-text predictions of one version, answered in one batch off the event loop.

A predictor whose one-text call costs about what a batch of them costs (a neural encoder's
forward pass: ``families.base.BatchedPrediction``) would otherwise answer concurrent requests
one after another on the event loop, each a full pass, while nothing else (health, feedback)
is served. Here the first request of a version starts a batch in a worker thread; requests
arriving while it runs wait together and go in the next one (at most ``max_texts`` texts).
There is no timer: a lone request waits for nothing, and under load each pass carries the
requests that queued behind the previous one. One worker thread runs the passes (the model
uses its own threads inside one), so batches never compete with each other for the cores.

These requests skip admission's loop-lag rule (``api/admission.py``), so the wait is bounded
here (``config.PredictionBatch``): at most ``max_waiting`` texts wait for a pass, all versions
together (one more is refused at once), and a text whose pass has not started within
``wait_seconds`` is refused; both are an ``OverloadedError`` (503 with Retry-After). A request
cancelled while it waits (its client left) leaves the line: no pass computes it.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from learnloop.config import PredictionBatch
from learnloop.errors import OverloadedError
from learnloop.families.base import FloatArray, Predictor

log = logging.getLogger(__name__)

Answer = tuple[str, dict[str, float]]


class _Waiter:
    """One text in line for a pass: its answer, and the timer that refuses it if no pass
    takes it in time."""

    __slots__ = ("answer", "expiry", "text")
    expiry: asyncio.TimerHandle  # armed as it joins the line

    def __init__(self, text: str, answer: asyncio.Future[Answer]) -> None:
        self.text = text
        self.answer = answer


class PredictionBatcher:
    def __init__(self, bounds: PredictionBatch | None = None) -> None:
        self.bounds = bounds or PredictionBatch()
        self._lines: dict[int, tuple[Predictor, list[_Waiter]]] = {}  # by id(predictor): one per loaded version
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="learnloop-predict")
        self.waiting = 0  # texts in line for a pass, all versions together
        self.batches = 0  # passes run, and the texts they carried (tests, benches)
        self.texts = 0
        self.refused = 0  # texts refused: the line full, or no pass in time

    async def predict_one(self, predictor: Predictor, text: str) -> Answer:
        """The answer for ``text``, computed in a pass with the texts waiting beside it;
        ``OverloadedError`` when the line is full or no pass takes it within ``wait_seconds``."""
        if self.waiting >= self.bounds.max_waiting:
            self.refused += 1
            raise OverloadedError(
                f"{self.waiting} predictions are waiting for the model (the bound); retry shortly", retry_after=1.0
            )
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Answer] = loop.create_future()
        entry = self._lines.get(id(predictor))
        if entry is None:
            line: list[_Waiter] = []
            self._lines[id(predictor)] = (predictor, line)
            task = loop.create_task(self._drain(predictor, line))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            line = entry[1]
        waiter = _Waiter(text, answer)
        waiter.expiry = loop.call_later(self.bounds.wait_seconds, self._expire, line, waiter)
        line.append(waiter)
        self.waiting += 1
        try:
            return await answer
        except asyncio.CancelledError:
            self._leave(line, waiter)
            raise

    def _leave(self, line: list[_Waiter], waiter: _Waiter) -> bool:
        """Take ``waiter`` out of the line if it is still in it (no pass has taken it)."""
        waiter.expiry.cancel()
        try:
            line.remove(waiter)
        except ValueError:
            return False  # its pass has it already
        self.waiting -= 1
        return True

    def _expire(self, line: list[_Waiter], waiter: _Waiter) -> None:
        if self._leave(line, waiter) and not waiter.answer.done():
            self.refused += 1
            waiter.answer.set_exception(
                OverloadedError(
                    f"no pass of the model could take this prediction within {self.bounds.wait_seconds:g} s; "
                    "retry shortly",
                    retry_after=1.0,
                )
            )

    async def _drain(self, predictor: Predictor, line: list[_Waiter]) -> None:
        """Run the waiting texts in batches until none wait (all on the event loop but the pass)."""
        loop = asyncio.get_running_loop()
        try:
            while line:
                batch = line[: self.bounds.max_texts]
                del line[: self.bounds.max_texts]
                self.waiting -= len(batch)
                for waiter in batch:
                    waiter.expiry.cancel()
                texts = [waiter.text for waiter in batch]
                try:
                    proba = await loop.run_in_executor(self._executor, predictor.predict_proba, texts)
                except Exception as exc:  # every request of the batch gets the error (a canary falls back)
                    for waiter in batch:
                        if not waiter.answer.done():
                            waiter.answer.set_exception(exc)
                    continue
                self.batches += 1
                self.texts += len(batch)
                for waiter, row in zip(batch, _answers(predictor, proba), strict=True):
                    if not waiter.answer.done():  # its request may have been cancelled during the pass
                        waiter.answer.set_result(row)
        finally:
            del self._lines[id(predictor)]
            for waiter in list(line):  # only if the loop is going away mid-batch
                self._leave(line, waiter)
                waiter.answer.cancel()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _answers(predictor: Predictor, proba: FloatArray) -> list[Answer]:
    labels = predictor.labels
    out = []
    for row in proba:
        probabilities = {label: float(p) for label, p in zip(labels, row, strict=True)}
        out.append((max(probabilities, key=probabilities.__getitem__), probabilities))
    return out
