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
import time
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
SUSPEND_TRIES = 100  # stops tried before a process that holds a write lock each time is left running


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
        until ``resume``. A fit waiting its turn behind it waits too.

        Never stopped while it holds a file's write lock: a search writes its trials to the
        model's database, and a process stopped inside a SQLite write transaction would hold
        the whole database (every heartbeat, feedback write and retrain) until resumed. So
        after each stop the locks it holds are read (``/proc/locks``); holding a write lock, it
        is continued until it lets go and stopped again (at most ``SUSPEND_TRIES`` times; then
        it is left running, and said so)."""
        for _ in range(SUSPEND_TRIES):
            with self._lock:
                for pid in _alive(self._pool):
                    # The training process first, before its children are looked for: stopped, it
                    # starts no more, and the stop lands as soon as its lock is seen let go (a
                    # scan of /proc takes milliseconds on a busy host, as long as its window)
                    if _signal(pid, signal.SIGSTOP):
                        self._stopped.append(pid)
                    for each in _descendants(pid):
                        if _signal(each, signal.SIGSTOP):
                            self._stopped.append(each)
                stopped = list(self._stopped)
            _until_stopped(stopped)  # a signal is delivered after kill() returns
            if not write_locks_held(stopped):
                return True
            self.resume()
            _until_released(stopped)
        log.warning(
            "the training process held a write lock each of %d times it was stopped: left running", SUSPEND_TRIES
        )
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


def write_locks_held(pids: list[int]) -> list[int]:
    """Those of ``pids`` that hold a POSIX (fcntl) write lock on a file, as SQLite's writers do
    (Linux: ``/proc/locks``; elsewhere none are known)."""
    if not pids or not sys.platform.startswith("linux"):
        return []
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    wanted, found = set(pids), set()
    for line in lines:
        fields = line.split()
        # "1: POSIX  ADVISORY  WRITE 4242 08:01:123 0 EOF" (a blocked waiter's line starts "1: ->")
        held = len(fields) >= 5 and fields[1] == "POSIX" and fields[3] == "WRITE" and fields[4].isdigit()
        if held and int(fields[4]) in wanted:
            found.add(int(fields[4]))
    return sorted(found)


def _until_stopped(pids: list[int], seconds: float = 1.0) -> None:
    """Wait (at most ``seconds``) until each of ``pids`` is stopped or gone (Linux: its state
    in ``/proc``; elsewhere at once)."""
    if not sys.platform.startswith("linux"):
        return
    deadline = time.monotonic() + seconds
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                break  # gone
            if status in ("T", "t", "Z", "X"):
                break
            time.sleep(0.0005)


def _until_released(pids: list[int], seconds: float = 1.0) -> None:
    """Wait (polling every 0.2 ms, at most ``seconds``) until ``pids`` hold no write lock: the
    next stop must land in the gap before the process's next write, a few milliseconds."""
    deadline = time.monotonic() + seconds
    while write_locks_held(pids) and time.monotonic() < deadline:
        time.sleep(0.0002)


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
