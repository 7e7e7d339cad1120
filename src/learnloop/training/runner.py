"""Where the training work runs: in this process, or in a child process beside a live server.

The work is a task's ``train`` (``learnloop.tasks``): curation, fits and scoring, all of it
compute on plain, picklable inputs. In a child process a long fit cannot stall the server's
request handling, and the kernel ends the child if the server dies.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Protocol, TypeVar

from learnloop.training.child import child_initializer

S = TypeVar("S")
R = TypeVar("R")


class TrainingRunner(Protocol):
    def run(self, fn: Callable[[S], R], spec: S) -> R:
        """``fn(spec)``, where this runner runs training work; ``fn`` is a module-level function."""
        ...

    def close(self) -> None: ...


class InProcessRunner:
    def run(self, fn: Callable[[S], R], spec: S) -> R:
        return fn(spec)

    def close(self) -> None:
        pass


class ChildProcessRunner:
    """One long-lived child process (spawned, so no threads or locks are inherited). Fits asked
    for from several threads at once (the worker's retrain, a model created over HTTP) run
    there one after the other."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[[S], R], spec: S) -> R:
        with self._lock:  # the worker and a model creation over HTTP may both start the pool
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=child_initializer,
                    initargs=(os.getpid(),),
                )
            future = self._pool.submit(fn, spec)
        return future.result()

    def close(self) -> None:
        """Stop now: a fit in progress is killed (its job fails and is safe to retry) rather
        than holding up a server's shutdown for its whole length."""
        if self._pool is None:
            return
        processes = list(getattr(self._pool, "_processes", {}).values())  # no public handle before 3.14
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(5)
        self._pool = None
