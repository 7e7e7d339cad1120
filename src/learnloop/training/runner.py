"""Where the training work runs: in this process, or in a child process beside a live server.

The work is a task's ``train`` (``learnloop.tasks``): curation, fits and scoring, all of it
compute on plain, picklable inputs. In a child process a long fit cannot stall the server's
request handling, and the kernel ends the child if the server dies.

The work says how far it got through the ``report(fraction, message)`` it is called with;
the runner hands each report to the caller's ``progress`` on the caller's thread (from the
child through a file of JSON lines it tails). A ``progress`` that raises (the job's lease was
lost, or the job was cancelled) stops the work: the child is ended.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Protocol, TypeVar

import orjson

from learnloop.training.child import child_initializer

log = logging.getLogger(__name__)

S = TypeVar("S")
R = TypeVar("R")
Report = Callable[[float, str], None]  # (fraction done, what is happening)
RELAY_SECONDS = 0.5


def _ignore(fraction: float, message: str) -> None:
    pass


class TrainingRunner(Protocol):
    def run(self, fn: Callable[[S, Report], R], spec: S, progress: Report | None = None) -> R:
        """``fn(spec, report)``, where this runner runs training work; ``fn`` is a module-level
        function and what it reports reaches ``progress``."""
        ...

    def warm(self, fn: Callable[[], None]) -> None:
        """Get ready for training work now rather than at the first fit: ``fn`` (a module-level
        function, e.g. one importing the ML stack) runs where the work will run, in the background."""
        ...

    def close(self) -> None: ...


class InProcessRunner:
    def run(self, fn: Callable[[S, Report], R], spec: S, progress: Report | None = None) -> R:
        return fn(spec, progress or _ignore)

    def warm(self, fn: Callable[[], None]) -> None:
        pass  # this process is where the work runs: nothing to start

    def close(self) -> None:
        pass


class ChildProcessRunner:
    """One long-lived child process (spawned, so no threads or locks are inherited). Fits asked
    for from several threads at once (the worker's retrain, a model created over HTTP) run
    there one after the other."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _started(self) -> ProcessPoolExecutor:
        """The pool, started if it is not (or if its process died: killed, out of memory, a
        crash in ``warm``'s function; the pool then refuses all work); under ``_lock``."""
        if self._pool is not None and getattr(self._pool, "_broken", False):  # no public flag
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=child_initializer,
                initargs=(os.getpid(),),
            )
        return self._pool

    def warm(self, fn: Callable[[], None]) -> None:
        """Start the training process now and run ``fn`` in it: a first fit then finds the
        process up and what ``fn`` imported loaded (a fit queued meanwhile runs after it)."""
        with self._lock:
            self._started().submit(fn).add_done_callback(_log_warm_failure)

    def run(self, fn: Callable[[S, Report], R], spec: S, progress: Report | None = None) -> R:
        with tempfile.TemporaryDirectory(prefix="learnloop-progress-") as tmp:
            reports = ReportFile(str(Path(tmp) / "progress.jsonl"))
            with self._lock:  # the worker and a model creation over HTTP may both start the pool
                future = self._started().submit(fn, spec, reports)
            try:
                return self._wait(future, reports, progress or _ignore)
            except BaseException:
                if not future.done():  # the caller gave up (a lost lease, a cancelled job): end the fit
                    self.close()
                raise

    @staticmethod
    def _wait(future: Future[R], reports: ReportFile, progress: Report) -> R:
        offset = 0
        while True:
            try:
                result = future.result(timeout=RELAY_SECONDS)
            except FutureTimeout:
                offset = reports.relay(offset, progress)
                continue
            reports.relay(offset, progress)
            return result

    def close(self) -> None:
        """Stop now: a fit in progress is killed (its job fails and is safe to retry, or was
        cancelled, or reclaimed by another worker) rather than holding up a server's shutdown
        or a cancellation for its whole length. The next ``run`` starts a fresh process."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())  # no public handle before 3.14
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(5)


class ReportFile:
    """The child's ``report``: appends each report to a file of JSON lines (picklable: a path)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, fraction: float, message: str) -> None:
        with open(self.path, "ab") as fh:
            fh.write(orjson.dumps([fraction, message]) + b"\n")

    def relay(self, offset: int, progress: Report) -> int:
        """Hand the complete lines after ``offset`` to ``progress``; the new offset."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except FileNotFoundError:
            return offset
        complete = data[: data.rfind(b"\n") + 1]
        for line in complete.splitlines():
            fraction, message = orjson.loads(line)
            progress(float(fraction), str(message))
        return offset + len(complete)


def _log_warm_failure(future: Future[None]) -> None:
    """A warm-up that failed is said in the log (the first fit then starts the process anew)."""
    if not future.cancelled() and future.exception() is not None:
        log.warning("warming the training process failed: %r", future.exception())
