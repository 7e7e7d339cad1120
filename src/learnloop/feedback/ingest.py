"""The ingest writer: every hot-path write runs on a writer thread, never on the event loop.

* **Predictions** go to the prediction log (``prediction_log.py``): a bounded buffer drained
  by a thread of its own; buffered (answered at once, written within ~0.1 s) or durable
  (answered once committed). A full buffer raises ``OverloadedError`` (503 with Retry-After).
* **Feedback** is *group-committed*: ``submit_feedback`` hands rows to the feedback thread and
  waits until the transaction that holds them has committed, so an acknowledged event survives
  a killed process. Concurrent requests share one commit, which is how a single SQLite or
  PostgreSQL connection takes thousands of events per second.

The two run on separate threads so that a table the prediction log cannot write (a lock on
``predictions``) holds up neither feedback nor the event loop. Every write waits at most the
statement timeout (``Database``). Feedback the database refuses is answered with an error for
that request alone (422; 503 when the database is unreachable, stalled or gone).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from learnloop.domain import Feedback
from learnloop.errors import OverloadedError, StorageUnavailableError
from learnloop.feedback.prediction_log import PredictionLog
from learnloop.feedback.write_errors import is_outage, storage_error
from learnloop.store.db import Database
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import predictions as prediction_repo

log = logging.getLogger(__name__)

FEEDBACK_BATCH = 5_000  # events per group commit


@dataclass
class _FeedbackRequest:
    rows: Sequence[dict[str, Any]]
    future: Future[list[Feedback]]


class IngestWriter:
    def __init__(
        self,
        db: Database,
        *,
        prediction_queue_max: int,
        feedback_queue_max: int,
        durable_predictions: bool = False,
        flush_rows: int = 1024,
        flush_seconds: float = 0.1,
        dead_letter: Path | None = None,
    ) -> None:
        self._db = db
        self.predictions = PredictionLog(
            db,
            queue_max=prediction_queue_max,
            durable=durable_predictions,
            flush_rows=flush_rows,
            flush_seconds=flush_seconds,
            dead_letter=dead_letter,
        )
        self._feedback: deque[_FeedbackRequest] = deque()
        self._feedback_rows = 0
        self._feedback_max = feedback_queue_max
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.feedback_busy_since: float | None = None  # monotonic start of the commit in progress

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self.predictions.start()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="learnloop-feedback", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking work and write what is pending, within about ``timeout`` seconds: past
        it, running statements are cancelled, buffered predictions go to the dead-letter file
        and feedback still waiting is answered 503 (it was never acknowledged)."""
        deadline = time.monotonic() + timeout
        self._stopping = True
        self._wake.set()
        self.predictions.close(timeout)
        if self._thread is not None:
            self._thread.join(max(0.1, deadline - time.monotonic()))
            if self._thread.is_alive():
                self._db.cancel_running()
                self._thread.join(2.0)
            self._thread = None
        else:
            self._write_feedback()
        self._fail_waiting_feedback()

    def flush(self) -> None:
        """Write every buffered prediction now. For an owner that runs no writer thread (a
        script, an in-process replay); a started writer flushes by itself."""
        if self._thread is not None:
            raise RuntimeError("flush() is for an ingest writer that was not started")
        self.predictions.drain()

    def write_now(self, timeout: float = 5.0) -> bool:
        """Have every prediction logged so far written before returning (a caller about to read
        the log back: an erasure must see every row). False if ``timeout`` ran out first.
        Blocks: call it from a worker thread, never from the event loop."""
        return self.predictions.wait_written(timeout)

    # -- producers ------------------------------------------------------------------------
    @property
    def prediction_backlog(self) -> int:
        return self.predictions.backlog

    @property
    def feedback_backlog(self) -> int:
        return self._feedback_rows

    @property
    def predictions_written(self) -> int:
        return self.predictions.written

    @property
    def predictions_dead_lettered(self) -> int:
        return self.predictions.dead_lettered

    def log_predictions(self, rows: Sequence[Mapping[str, Any]]) -> Future[None] | None:
        """Queue prediction-log rows; in durable mode, a future done once they are committed."""
        return self.predictions.log(rows)

    def log_prediction(self, row: Mapping[str, Any]) -> Future[None] | None:
        return self.predictions.log([row])

    def logged_prediction_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the prediction log holds already (written, not only queued): a
        stream consumer that names its answers' ids skips a redelivered one."""
        with self._db.read() as conn:
            return set(prediction_repo.predictions_by_id(conn, ids))

    def submit_feedback(self, rows: Sequence[dict[str, Any]]) -> Future[list[Feedback]]:
        if self._db.lost is not None:
            raise StorageUnavailableError(self._db.lost, retry_after=60.0)
        if self._stopping:
            raise OverloadedError("server is shutting down", retry_after=5.0)
        if self._feedback_rows + len(rows) > self._feedback_max:
            raise OverloadedError("feedback queue is full; retry shortly", retry_after=1.0)
        future: Future[list[Feedback]] = Future()
        self._feedback.append(_FeedbackRequest(rows, future))
        self._feedback_rows += len(rows)
        self._wake.set()
        if self._thread is None:  # not started (CLI, tests): write inline
            self._write_feedback()
        return future

    async def submit_feedback_async(self, rows: Sequence[dict[str, Any]]) -> list[Feedback]:
        return await asyncio.wrap_future(self.submit_feedback(rows))

    # -- the feedback thread --------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(0.5)
            self._wake.clear()
            self._write_feedback()
        self._write_feedback()

    def _write_feedback(self) -> None:
        while self._feedback:
            requests: list[_FeedbackRequest] = []
            while self._feedback and sum(len(r.rows) for r in requests) < FEEDBACK_BATCH:
                requests.append(self._feedback.popleft())
            try:
                self._commit_feedback(requests)
            except Exception as exc:
                if is_outage(exc, self._db):  # no use retrying now: every request hears 503
                    log.warning("feedback write failed (%d requests): %s", len(requests), exc)
                    for request in requests:
                        request.future.set_exception(storage_error(exc))
                    continue
                # The database refused this group: retry each request alone so only the culprit fails.
                for request in requests:
                    try:
                        self._commit_feedback([request])
                    except Exception as exc:
                        log.warning("feedback write refused (%d events): %s", len(request.rows), exc)
                        request.future.set_exception(storage_error(exc))
            finally:
                self._feedback_rows -= sum(len(r.rows) for r in requests)

    def _commit_feedback(self, requests: list[_FeedbackRequest]) -> None:
        rows = [row for request in requests for row in request.rows]
        self.feedback_busy_since = time.monotonic()
        try:
            with self._db.write() as conn:
                stored = feedback_repo.insert_feedback_many(conn, rows)
        finally:
            self.feedback_busy_since = None
        start = 0
        for request in requests:
            request.future.set_result(stored[start : start + len(request.rows)])
            start += len(request.rows)
        self._db.note_written("feedback", len(rows))

    def _fail_waiting_feedback(self) -> None:
        while self._feedback:
            request = self._feedback.popleft()
            self._feedback_rows -= len(request.rows)
            if not request.future.done():
                error = StorageUnavailableError("the server stopped before this was written; retry", retry_after=5.0)
                request.future.set_exception(error)
