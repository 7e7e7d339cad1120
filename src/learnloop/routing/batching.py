"""Concurrent single-text predictions of one version, answered in one batch off the event loop.

A predictor whose one-text call costs about what a batch of them costs (a neural encoder's
forward pass: ``families.base.BatchedPrediction``) would otherwise answer concurrent requests
one after another on the event loop, each a full pass, while nothing else (health, feedback)
is served. Here the first request of a version starts a batch in a worker thread; requests
arriving while it runs wait together and go in the next one (at most ``max_batch`` texts).
There is no timer: a lone request waits for nothing, and under load each pass carries the
requests that queued behind the previous one. One worker thread runs the passes (the model
uses its own threads inside one), so batches never compete with each other for the cores.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from learnloop.families.base import FloatArray, Predictor

log = logging.getLogger(__name__)

Answer = tuple[str, dict[str, float]]
_Waiting = list[tuple[str, "asyncio.Future[Answer]"]]


class PredictionBatcher:
    def __init__(self, max_batch: int = 64) -> None:
        self.max_batch = max_batch
        self._pending: dict[int, tuple[Predictor, _Waiting]] = {}  # by id(predictor): one per loaded version
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="learnloop-predict")
        self.batches = 0  # passes run, and the texts they carried (tests, benches)
        self.texts = 0

    async def predict_one(self, predictor: Predictor, text: str) -> Answer:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Answer] = loop.create_future()
        entry = self._pending.get(id(predictor))
        if entry is None:
            self._pending[id(predictor)] = (predictor, [(text, answer)])
            task = loop.create_task(self._drain(predictor))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            entry[1].append((text, answer))
        return await answer

    async def _drain(self, predictor: Predictor) -> None:
        """Run the waiting texts in batches until none wait (all on the event loop but the pass)."""
        loop = asyncio.get_running_loop()
        waiting = self._pending[id(predictor)][1]
        try:
            while waiting:
                batch = waiting[: self.max_batch]
                del waiting[: self.max_batch]
                texts = [text for text, _ in batch]
                try:
                    proba = await loop.run_in_executor(self._executor, predictor.predict_proba, texts)
                except Exception as exc:  # every request of the batch gets the error (a canary falls back)
                    for _, answer in batch:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                self.batches += 1
                self.texts += len(batch)
                for (_, answer), row in zip(batch, _answers(predictor, proba), strict=True):
                    if not answer.done():  # its request may have been cancelled (client gone)
                        answer.set_result(row)
        finally:
            del self._pending[id(predictor)]
            for _, answer in waiting:  # only if the loop is going away mid-batch
                answer.cancel()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _answers(predictor: Predictor, proba: FloatArray) -> list[Answer]:
    labels = predictor.labels
    out = []
    for row in proba:
        probabilities = {label: float(p) for label, p in zip(labels, row, strict=True)}
        out.append((max(probabilities, key=probabilities.__getitem__), probabilities))
    return out
