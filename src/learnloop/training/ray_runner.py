"""Training work handed to a Ray cluster a team already runs: the fit is one Ray task.

Ray schedules it (on a node with ``num_cpus`` free), runs it and can kill it; learnloop adds no
scheduler of its own. What crosses is what the child process gets (``ChildProcessRunner``):
the module-level ``fn`` and its picklable spec, which carries the artifact store's URL and the
database's, so the task writes the candidate's artifact to the store and its search studies to
the database exactly as the child process does, and returns the small result (a ``Candidate``
and its cost) through Ray. The cluster's workers must therefore reach the store and the
database, and have learnloop installed (the same version as the worker).

The worker that waits keeps its job's lease: the lease's heartbeat runs on its own thread, and
the task's progress reports reach the worker through a small Ray actor it polls (the cluster
may be on other hosts: no shared file). A cancelled job (or a lost lease) cancels the task
with ``ray.cancel(force=True)``: Ray kills the process running it. Ray cannot suspend a running
task, so a job running here cannot be paused (``PAUSE_REFUSAL``); cancel it instead.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from learnloop.errors import LearnloopError, MissingExtraError
from learnloop.training.cost import TRAINING_PROCESS_ENV

log = logging.getLogger(__name__)

S = TypeVar("S")
R = TypeVar("R")
Report = Callable[[float, str], None]
RELAY_SECONDS = 0.5
PAUSE_REFUSAL = (
    "its fit runs as a Ray task (training_runner ray), and Ray cannot suspend a running task; "
    "cancel the job instead (a retrain queued later starts from scratch)"
)


class RayTaskFailed(LearnloopError):
    """The Ray task ended without a result: the fit raised there, or Ray lost the task's process
    (killed, out of memory, its node gone). The message ends with the remote error's last line."""

    code = "ray_task_failed"


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtraError("training_runner ray needs Ray: pip install 'learnloop[ray]'", extra="ray") from None
    return ray


class ReportBox:
    """The actor that holds each running task's progress reports until the worker takes them
    (one per runner, kept for its life: a new actor is a new process on the cluster)."""

    def __init__(self) -> None:
        self._reports: dict[str, list[tuple[float, str]]] = {}

    def add(self, key: str, fraction: float, message: str) -> None:
        self._reports.setdefault(key, []).append((fraction, message))

    def take(self, key: str) -> list[tuple[float, str]]:
        return self._reports.pop(key, [])


class RayReport:
    """The task's ``report``: sends each report to the actor and waits for it to be held, so
    the worker's last poll after the task ends sees every report (picklable: a handle and a key)."""

    def __init__(self, box: Any, key: str) -> None:
        self.box = box
        self.key = key

    def __call__(self, fraction: float, message: str) -> None:
        _ray().get(self.box.add.remote(self.key, float(fraction), str(message)))


def run_task(fn: Callable[[S, Report], R], spec: S, report: Report) -> R:
    """What the Ray task runs, in a Ray worker process: ``fn(spec, report)``. The process runs one
    task at a time, so the cost meter counts the whole process (as in the child process)."""
    os.environ[TRAINING_PROCESS_ENV] = "1"
    return fn(spec, report)


class RayRunner:
    """Each fit a Ray task on the cluster at ``address`` (None: Ray's own default, the
    ``RAY_ADDRESS`` variable, else a one-node Ray started in this process), asking for
    ``num_cpus``. Connected on the first fit, so a worker that never trains never loads Ray."""

    def __init__(self, address: str | None = None, *, num_cpus: float = 1.0) -> None:
        if num_cpus <= 0:
            raise ValueError(f"num_cpus must be > 0, got {num_cpus}")
        self.address = address
        self.num_cpus = num_cpus
        self._lock = threading.Lock()
        self._box: Any = None
        self._running: dict[str, Any] = {}  # key -> the ObjectRef of a task in flight

    def _connected(self) -> tuple[Any, Any]:
        """Ray, connected, and the report actor (started if not, or if it died); under ``_lock``."""
        ray = _ray()
        if not ray.is_initialized():
            log.info("connecting to Ray at %s", self.address or "Ray's default address")
            with warnings.catch_warnings():  # Ray's tip about a future default for GPU variables
                warnings.simplefilter("ignore", FutureWarning)
                ray.init(address=self.address, log_to_driver=False, configure_logging=False)
        if self._box is None:
            self._box = ray.remote(ReportBox).options(num_cpus=0, max_restarts=-1).remote()
        return ray, self._box

    def warm(self, fn: Callable[[], None]) -> None:
        pass  # the cluster's workers are its own: nothing of ours to start ahead

    def run(self, fn: Callable[[S, Report], R], spec: S, progress: Report | None = None) -> R:
        key = uuid.uuid4().hex
        with self._lock:
            ray, box = self._connected()
            task = ray.remote(run_task).options(num_cpus=self.num_cpus, max_retries=0, name="learnloop-fit")
            ref = task.remote(fn, spec, RayReport(box, key))
            self._running[key] = ref
        try:
            result: R = self._wait(ray, ref, box, key, progress)
            return result
        except BaseException:
            self._cancel(ray, ref)  # the caller gave up (a lost lease, a cancelled job): end the task
            raise
        finally:
            with self._lock:
                self._running.pop(key, None)

    @staticmethod
    def _wait(ray: Any, ref: Any, box: Any, key: str, progress: Report | None) -> Any:
        while True:
            ready, _ = ray.wait([ref], timeout=RELAY_SECONDS)
            for fraction, message in ray.get(box.take.remote(key)):
                if progress is not None:
                    progress(fraction, message)  # raises when the lease is lost or the job cancelled
            if ready:
                return _result(ray, ref)

    @staticmethod
    def _cancel(ray: Any, ref: Any) -> None:
        try:
            ray.cancel(ref, force=True)
        except Exception:  # finished meanwhile, or the cluster is gone: nothing left to stop
            log.debug("could not cancel a Ray task", exc_info=True)

    def suspend(self) -> bool:
        return False  # Ray cannot suspend a running task (PAUSE_REFUSAL)

    def resume(self) -> None:
        pass

    def close(self) -> None:
        """Cancel every task in flight (force: Ray kills their processes); the waiting ``run``
        then raises. The connection stays for the next fit."""
        with self._lock:
            running = list(self._running.values())
        if running:
            ray = _ray()
            for ref in running:
                self._cancel(ray, ref)


def _result(ray: Any, ref: Any) -> Any:
    """The task's result, or its failure as the job's error: a learnloop error raised by the fit
    as itself (the same message as from the child process), anything else as ``RayTaskFailed``
    ending with the remote traceback's last line."""
    try:
        return ray.get(ref)
    except ray.exceptions.TaskCancelledError:
        raise RayTaskFailed("the Ray task was cancelled") from None
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, LearnloopError):
            raise cause from None
        raise RayTaskFailed(f"the fit failed in its Ray task: {_last_line(str(exc))}") from None
    except ray.exceptions.RayError as exc:  # the worker process or its node died, out of memory
        raise RayTaskFailed(f"the Ray task ended without a result: {_last_line(str(exc))}") from None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text
