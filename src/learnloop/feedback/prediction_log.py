"""The prediction log: every answered prediction becomes a row, written by a thread of its own.

The request path only encodes the row (microseconds) and appends it to a bounded buffer; the
writer thread takes the buffer in batches and writes each in one statement (``COPY`` on
PostgreSQL, a multi-row ``INSERT`` on SQLite). No database call ever runs on the event loop,
so a stalled database cannot freeze the server: writes wait at most the statement timeout,
the buffer fills, and then predictions answer 503 with Retry-After (``OverloadedError``),
never unbounded memory and never a silent drop.

Two modes (``Settings.prediction_log``):

* **buffered** (default): a prediction is answered at once and written within
  ``flush_seconds`` (or as soon as ``flush_rows`` are waiting). A killed process loses what
  was answered but not yet written: that window is stated in the README.
* **durable**: ``log`` hands back a future that completes once the rows are committed; the
  route awaits it before answering. Concurrent requests share one commit (group commit),
  as feedback does. A request whose commit fails is answered 503 and its rows are dropped:
  it was never acknowledged.

Failures stay with the rows that caused them. A failure that says the database is out of
reach, stalled or gone (``OperationalError``, a timeout, the SQLite file deleted) keeps
buffered rows for a retry after a pause; a batch a healthy database refuses is retried row by
row, and a refused row goes to ``dead_letter`` (JSON lines) and is counted. Rows that are
still buffered when a stop runs out of time are dead-lettered too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import orjson

from learnloop.errors import OverloadedError, StorageUnavailableError
from learnloop.feedback.write_errors import is_outage, storage_error
from learnloop.store.db import Database
from learnloop.store.repositories import predictions as prediction_repo
from learnloop.store.repositories.predictions import PredictionRow

log = logging.getLogger(__name__)

BATCH_MAX = 5_000  # rows per write
RETRY_PAUSE = 0.5  # seconds between tries while the database is out of reach


class PredictionLog:
    def __init__(
        self,
        db: Database,
        *,
        queue_max: int,
        durable: bool = False,
        flush_rows: int = 1024,
        flush_seconds: float = 0.1,
        dead_letter: Path | None = None,
    ) -> None:
        self._db = db
        self._encode = prediction_repo.prediction_row_encoder(db.write_engine.dialect)
        self.durable = durable
        self._max = queue_max
        self._flush_rows = flush_rows
        self._flush_seconds = flush_seconds
        self._dead_letter = dead_letter
        self._rows: deque[PredictionRow] = deque()
        # durable: (number of the request's last row, counted since start; its future)
        self._acks: deque[tuple[int, Future[None]]] = deque()
        self._queued = 0  # rows ever queued
        self._taken = 0  # rows ever taken into a write
        self._lock = threading.Lock()  # keeps rows and acks in step between producers and the writer
        self._in_flight: list[PredictionRow] = []  # the batch being written
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.written = 0
        self.dead_lettered = 0
        self.busy_since: float | None = None  # monotonic start of the write in progress
        self.failing_since: float | None = None  # monotonic time of the first failure in a row

    # -- producers ------------------------------------------------------------------------
    @property
    def backlog(self) -> int:
        """Rows not yet written: buffered, and in the write in progress."""
        return len(self._rows) + len(self._in_flight)

    def log(self, rows: Sequence[Mapping[str, Any]]) -> Future[None] | None:
        """Queue prediction-log rows. Durable mode: a future done once they are committed
        (failed with a ``LearnloopError`` when they cannot be); buffered: None."""
        if self._db.lost is not None:
            raise StorageUnavailableError(self._db.lost, retry_after=60.0)
        if self._stopping:
            raise OverloadedError("server is shutting down", retry_after=5.0)
        if self.backlog + len(rows) > self._max:
            raise OverloadedError("prediction log is full; retry shortly", retry_after=1.0)
        encoded = [self._encode(row) for row in rows]
        future: Future[None] | None = Future() if self.durable else None
        with self._lock:
            self._rows.extend(encoded)
            self._queued += len(encoded)
            if future is not None:
                self._acks.append((self._queued, future))
        if future is not None or len(self._rows) >= self._flush_rows:
            self._wake.set()
        if self._thread is None and future is not None:  # not started (CLI, tests): write inline
            self.drain()
        return future

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="learnloop-prediction-log", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is buffered within ``timeout``: past it, cancel the write in progress,
        dead-letter the rows still buffered and fail durable requests still waiting."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("prediction log: the write in progress outlasted the stop; cancelling it")
                self._db.cancel_running()
                self._thread.join(2.0)
            self._thread = None
        else:
            self.drain()
        self._abandon("the server stopped before these predictions could be written")

    def drain(self) -> bool:
        """Write everything buffered, in the calling thread; False if the database is out of
        reach (rows kept)."""
        while self._rows:
            if not self._write_batch():
                return False
        return True

    def wait_written(self, timeout: float) -> bool:
        """Block until every row queued so far is settled (written, or dead-lettered), by the
        thread or here when none runs; False if ``timeout`` ran out first."""
        if self._thread is None:
            return self.drain()
        with self._lock:
            target = self._queued
        self._wake.set()
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._taken >= target and self.busy_since is None:
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    # -- the writer thread ----------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping:
            if not self._acks:  # durable requests are written at once
                self._wake.wait(self._flush_seconds)
            self._wake.clear()
            if not self.drain():
                time.sleep(RETRY_PAUSE)
        self.drain()

    def _take(self) -> tuple[list[PredictionRow], list[tuple[int, Future[None]]]]:
        """The next batch, and the durable requests it completes (with the batch offset where
        each one's rows end). Marks the write as in progress."""
        with self._lock:
            n = min(len(self._rows), BATCH_MAX)
            acks: list[tuple[int, Future[None]]] = []
            while self._acks and (not acks or self._acks[0][0] - self._taken <= BATCH_MAX):
                end, future = self._acks.popleft()  # whole requests: never one over two commits
                acks.append((end - self._taken, future))
            if acks:
                n = acks[-1][0]
            batch = [self._rows.popleft() for _ in range(n)]
            self._taken += n
            self._in_flight = batch
            if batch:
                self.busy_since = time.monotonic()
        return batch, acks

    def _write_batch(self) -> bool:
        batch, acks = self._take()
        if not batch:
            return True
        try:
            self._insert(batch)
        except Exception as exc:
            if is_outage(exc, self._db):
                self._after_outage(batch, acks, exc)
                return False
            self._write_each(batch, acks)
        else:
            self.written += len(batch)
            for _, future in acks:
                future.set_result(None)
            self._db.note_written("predictions", len(batch))
        finally:
            with self._lock:
                self._in_flight = []
                self.busy_since = None
        self.failing_since = None
        return True

    def _insert(self, rows: Sequence[PredictionRow]) -> None:
        with self._db.write() as conn:
            prediction_repo.insert_predictions(conn, rows)

    def _after_outage(self, batch: list[PredictionRow], acks: list[tuple[int, Future[None]]], exc: Exception) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        if acks:  # never acknowledged: the clients hear 503 and may retry; nothing is kept
            error = storage_error(exc, self._db)
            for _, future in acks:
                future.set_exception(error)
            log.warning("prediction log: %d durable predictions refused (%s)", len(batch), exc)
            return
        with self._lock:  # buffered: keep every row, in order, for the next try
            self._rows.extendleft(reversed(batch))
            self._taken -= len(batch)
        log.warning("prediction log: database out of reach (%s); %d rows kept for retry", exc, len(self._rows))

    def _write_each(self, batch: list[PredictionRow], acks: list[tuple[int, Future[None]]]) -> None:
        """A healthy database refused the batch: find the rows (durable: the requests) it refuses."""
        if not acks:
            for row in batch:
                try:
                    self._insert([row])
                    self.written += 1
                except Exception as exc:
                    self._dead_letter_row(row, exc)
            return
        start = 0
        for end, future in acks:
            rows, start = batch[start:end], end
            try:
                self._insert(rows)
            except Exception as exc:
                log.warning("prediction log: a durable request refused (%d rows): %s", len(rows), exc)
                future.set_exception(storage_error(exc, self._db))
            else:
                self.written += len(rows)
                future.set_result(None)

    def _abandon(self, why: str) -> None:
        """After a stop: fail durable requests still waiting; dead-letter buffered rows (those
        of a write still hanging in a stalled database too: better twice than never)."""
        with self._lock:
            rows = [*self._in_flight, *self._rows]
            self._rows.clear()
            acks = list(self._acks)
            self._acks.clear()
        for _, future in acks:
            if not future.done():
                future.set_exception(StorageUnavailableError(why, retry_after=5.0))
        if not self.durable:
            for row in rows:
                self._dead_letter_row(row, RuntimeError(why))

    def _dead_letter_row(self, values: PredictionRow, exc: BaseException) -> None:
        self.dead_lettered += 1
        row = dict(zip(prediction_repo.PREDICTION_COLUMNS, values, strict=True))
        log.error("prediction %s not logged (%s); written to the dead-letter file", row["id"], exc)
        if self._dead_letter is None:
            return
        try:
            self._dead_letter.parent.mkdir(parents=True, exist_ok=True)
            record = {**row, "created_at": str(row["created_at"]), "error": str(exc)[:500]}
            with self._dead_letter.open("ab") as fh:
                fh.write(orjson.dumps(record, default=str) + b"\n")
        except Exception:  # the row is in the log message above; keep the writer alive
            log.exception("could not write prediction %s to the dead-letter file", row["id"])
