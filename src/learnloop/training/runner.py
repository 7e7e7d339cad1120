"""Where a fit runs: in this process, or in a child process beside a live server."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Protocol

from learnloop.training.fit import TrainResult, TrainSpec, child_initializer, fit_and_score


class TrainingRunner(Protocol):
    def run(self, spec: TrainSpec) -> TrainResult: ...

    def close(self) -> None: ...


class InProcessRunner:
    def run(self, spec: TrainSpec) -> TrainResult:
        return fit_and_score(spec)

    def close(self) -> None:
        pass


class ChildProcessRunner:
    """One long-lived child process (spawned, so no threads or locks are inherited). Fits asked
    for from several threads at once (the worker's retrain, a model created over HTTP) run
    there one after the other."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(self, spec: TrainSpec) -> TrainResult:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=child_initializer,
                )
            future = self._pool.submit(fit_and_score, spec)
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
