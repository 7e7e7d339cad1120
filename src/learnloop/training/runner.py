"""Where the training work runs: in this process, or in a child process beside a live server.

The work is a task's ``train`` (``learnloop.tasks``): curation, fits and scoring, all of it
compute on plain, picklable inputs. In a child process a long fit cannot stall the server's
request handling, and the kernel ends the child if the server dies.

The work says how far it got through the ``report(fraction, message)`` it is called with;
the runner hands each report to the caller's ``progress`` on the caller's thread (from the
child through a file of JSON lines it tails). A ``progress`` that raises (the job's lease was
lost, or the job was cancelled) stops the work: the child is ended.

A paused job's fit is stopped where it is (``suspend``: SIGSTOP to the training process and
what it started), whatever the family is doing (mid-epoch, mid-trial, mid-stage): it keeps its
memory and uses no CPU until ``resume`` (SIGCONT) continues it exactly where it was. This is
the one pause for every family; no family needs a checkpoint to continue from a pause. Work
run in this process (``InProcessRunner``) cannot be stopped from outside: it stops at its next
progress report instead (``jobs.leases.Lease.proceed``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
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

    def suspend(self) -> bool:
        """Stop the training work where it is, releasing its CPU; False when this runner cannot
        (the work then stops at its next progress report)."""
        ...

    def resume(self) -> None:
        """Continue the work ``suspend`` stopped, where it stopped."""
        ...

    def close(self) -> None: ...


class InProcessRunner:
    def run(self, fn: Callable[[S, Report], R], spec: S, progress: Report | None = None) -> R:
        return fn(spec, progress or _ignore)

    def warm(self, fn: Callable[[], None]) -> None:
        pass  # this process is where the work runs: nothing to start

    def suspend(self) -> bool:
        return False  # this process serves too: the work stops at its next progress report

    def resume(self) -> None:
        pass

    def close(self) -> None:
        pass


class ChildProcessRunner:
    """One long-lived child process (spawned, so no threads or locks are inherited). Fits asked
    for from several threads at once (the worker's retrain, a model created over HTTP) run
    there one after the other."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._stopped: list[int] = []  # pids stopped by ``suspend``, the training process first

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

    def pids(self) -> list[int]:
        """The training process's pid (none before it started or after ``close``)."""
        with self._lock:
            return _alive(self._pool)

    def suspend(self) -> bool:
        """SIGSTOP the training process, then what it started (a library's worker processes):
        the fit in it stops at once, whatever it is doing, keeping its memory, and uses no CPU
        until ``resume``. A fit waiting its turn behind it waits too."""
        with self._lock:
            for pid in _alive(self._pool):
                for each in [pid, *_descendants(pid)]:  # the parent first: it starts no more children
                    if _signal(each, signal.SIGSTOP):
                        self._stopped.append(each)
        return True

    def resume(self) -> None:
        """SIGCONT what ``suspend`` stopped: the fit continues where it was."""
        with self._lock:
            stopped, self._stopped = self._stopped, []
        for pid in reversed(stopped):  # children first, the training process last
            _signal(pid, signal.SIGCONT)

    def close(self) -> None:
        """Stop now: a fit in progress is killed (its job fails and is safe to retry, or was
        cancelled, or reclaimed by another worker) rather than holding up a server's shutdown
        or a cancellation for its whole length; a suspended fit is continued after its SIGTERM,
        so that it is delivered. The next ``run`` starts a fresh process."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = _processes(pool)
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        self.resume()  # a stopped process acts on its SIGTERM only once continued
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


def _processes(pool: ProcessPoolExecutor | None) -> list[multiprocessing.Process]:
    """The pool's processes (no public handle before Python 3.14)."""
    found = getattr(pool, "_processes", None) if pool is not None else None
    return list(found.values()) if found else []


def _alive(pool: ProcessPoolExecutor | None) -> list[int]:
    return [p.pid for p in _processes(pool) if p.pid is not None and p.is_alive()]


def _signal(pid: int, signum: signal.Signals) -> bool:
    """Send ``signum`` to ``pid``; False when it is gone."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True


def _descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs (Linux: read from /proc; elsewhere none)."""
    if not sys.platform.startswith("linux"):
        return []
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop(0)
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def _log_warm_failure(future: Future[None]) -> None:
    """A warm-up that failed is said in the log (the first fit then starts the process anew)."""
    if not future.cancelled() and future.exception() is not None:
        log.warning("warming the training process failed: %r", future.exception())
