"""Shadow answers, off the critical path.

While a shadow rollout runs, the request path hands (prediction id, text) to ``ShadowRunner``
and returns the champion's answer at once. A background thread batches the copies, lets the
shadow version answer them (``predict_proba`` on a batch) and writes the answers to
``shadow_predictions``, where the rollout controller pairs them with the feedback on the served
prediction. A shadow never slows or fails a request: when the buffer is full, the copy is
skipped and counted (``learnloop_shadow_skipped_total``), and a shadow that raises is logged
and counted, never seen by the client. A copy is evidence, not user data: skipping one under
overload loses nothing the user sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from learnloop.routing.cache import LiveRollout
from learnloop.store.db import Database
from learnloop.store.repositories import predictions as prediction_repo
from learnloop.tasks.classification import ClassAnswer
from learnloop.telemetry import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Copy:
    rollout: LiveRollout
    model: str
    prediction_id: str
    text: str
    created_at: datetime


class ShadowRunner:
    def __init__(self, db: Database, metrics: Metrics, *, queue_max: int = 10_000, batch: int = 256) -> None:
        self._db = db
        self._metrics = metrics
        self._queue: deque[_Copy] = deque()
        self._max = queue_max
        self._batch = batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, rollout: LiveRollout, model: str, prediction_id: str, text: str, at: datetime) -> None:
        if len(self._queue) >= self._max:
            self._metrics.shadow_skipped.labels(model).inc()
            return
        self._queue.append(_Copy(rollout, model, prediction_id, text, at))
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="learnloop-shadow", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            self.drain()

    def drain(self) -> None:
        """Answer and store every queued copy (the thread calls this; tests and replays may too)."""
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(self._batch, len(self._queue)))]
            try:
                self._answer(batch)
            except Exception:
                log.exception("shadow answers for %d requests failed", len(batch))
                for c in batch:
                    self._metrics.shadow_errors.labels(c.model).inc()

    def _answer(self, batch: list[_Copy]) -> None:
        groups: dict[tuple[str, int], list[_Copy]] = {}
        for c in batch:
            groups.setdefault((c.model, c.rollout.id), []).append(c)
        rows: list[dict[str, Any]] = []
        for copies in groups.values():
            shadow = copies[0].rollout.challenger
            started = time.perf_counter()
            proba = shadow.classifier.predict_proba([c.text for c in copies])
            latency_ms = (time.perf_counter() - started) * 1000 / len(copies)
            labels = shadow.classifier.labels
            for c, p in zip(copies, proba, strict=True):
                answer = ClassAnswer(labels[int(p.argmax())], dict(zip(labels, map(float, p), strict=True)))
                rows.append(
                    {
                        "prediction_id": c.prediction_id,
                        "rollout_id": c.rollout.id,
                        "model": c.model,
                        "version": shadow.version,
                        "answer": orjson.dumps(answer.to_answer()).decode(),
                        "latency_ms": latency_ms,
                        "created_at": c.created_at,
                    }
                )
        with self._db.write() as conn:
            prediction_repo.insert_shadow_predictions(conn, rows)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
        self.drain()
