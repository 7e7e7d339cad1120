"""What a fit costs the machine: CPU seconds, wall seconds, peak memory and GPU seconds.

The meter runs where the fit runs (``measured`` is what the runner is given), so it reads the
process that does the work, not the server that waits for it:

* **CPU seconds** are user + system time. In the training process (``child.py`` marks it)
  that is the whole process, every thread of it, plus the child processes it waited for; in
  a shared process (a server or CLI without an isolated training process) only the thread
  that ran the fit, since the process's total would count the server's requests too (threads
  the fit starts itself, a BLAS pool, are then missed: an undercount, said by ``scope``).
* **Peak memory** is the resident-set high-water mark of that process during the fit: on
  Linux the kernel's ``VmHWM``, reset at the start through ``/proc/self/clear_refs``, so it is
  the most the process held while fitting (libraries it had loaded before included). Where
  the reset is not allowed it is ``ru_maxrss``, the process's lifetime peak (an upper bound;
  ``memory_measure`` says which). ``tracemalloc`` would miss numpy's and torch's buffers.
* **GPU seconds**: when torch is loaded and the fit allocated memory on a CUDA device, the
  wall seconds of the fit times the devices it used (how long it held them, not how busy they
  were), with the peak allocated bytes; None otherwise. torch is never imported here.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from learnloop.domain import TrainingCost

S = TypeVar("S")
R = TypeVar("R")
Report = Callable[[float, str], None]
TRAINING_PROCESS_ENV = "LEARNLOOP_TRAINING_PROCESS"  # set by the training process's initializer
_CLEAR_REFS = "/proc/self/clear_refs"
_STATUS = "/proc/self/status"


def measured(call: tuple[Callable[[S, Report], R], S], report: Report) -> tuple[R, TrainingCost]:
    """Run ``fn(spec, report)`` under a ``CostMeter``: what a runner is given so the cost is
    read where the work runs (``call`` is ``(fn, spec)``, both picklable)."""
    fn, spec = call
    scope = "process" if os.environ.get(TRAINING_PROCESS_ENV) == "1" else "thread"
    with CostMeter(scope) as meter:
        result = fn(spec, report)
    assert meter.cost is not None
    return result, meter.cost


class CostMeter:
    """``with CostMeter("process") as meter: fit()``; then ``meter.cost``."""

    def __init__(self, scope: str = "process") -> None:
        if scope not in ("process", "thread"):
            raise ValueError(f"scope must be 'process' or 'thread', got {scope!r}")
        self.scope = scope
        self.cost: TrainingCost | None = None

    def _cpu(self) -> float:
        if self.scope == "thread":
            return time.thread_time()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    def __enter__(self) -> CostMeter:
        self._reset = _reset_peak_rss()
        self._gpu_devices = _reset_gpu_peaks()
        self._cpu0 = self._cpu()
        self._wall0 = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        wall = time.perf_counter() - self._wall0
        cpu = self._cpu() - self._cpu0
        peak, how = (_vmhwm(), "vmhwm") if self._reset else (None, "maxrss")
        if peak is None:
            peak, how = _maxrss(), "maxrss"
        gpu_seconds, gpu_peak = _gpu_use(wall)
        self.cost = TrainingCost(
            wall_seconds=round(wall, 4),
            cpu_seconds=round(cpu, 4),
            peak_rss_bytes=peak,
            scope=self.scope,
            memory_measure=how,
            gpu_seconds=gpu_seconds,
            gpu_peak_bytes=gpu_peak,
        )


def _reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux >= 4.0); False where not allowed."""
    try:
        with open(_CLEAR_REFS, "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return _vmhwm() is not None


def _vmhwm() -> int | None:
    try:
        with open(_STATUS) as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _maxrss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


def _torch_cuda() -> Any | None:
    """torch.cuda if torch is loaded already and CUDA is up in this process; else None."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        cuda = torch.cuda
        return cuda if cuda.is_available() and cuda.is_initialized() else None
    except Exception:  # a torch built without CUDA, a broken driver
        return None


def _reset_gpu_peaks() -> int:
    cuda = _torch_cuda()
    if cuda is None:
        return 0
    for device in range(cuda.device_count()):
        cuda.reset_peak_memory_stats(device)
    return int(cuda.device_count())


def _gpu_use(wall: float) -> tuple[float | None, int | None]:
    """(GPU seconds, peak allocated bytes) of the devices the fit allocated memory on."""
    cuda = _torch_cuda()
    if cuda is None:
        return None, None
    peaks = [int(cuda.max_memory_allocated(device)) for device in range(cuda.device_count())]
    used = [peak for peak in peaks if peak > 0]
    if not used:
        return None, None
    return round(wall * len(used), 4), max(used)
