"""The training process: set up once when the runner starts it."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

from learnloop.training.cost import TRAINING_PROCESS_ENV


def child_initializer(parent_pid: int) -> None:
    """Run in the training process: one BLAS thread, low priority beside the server, and
    ended by the kernel if the server dies (else a killed server would leave it behind).
    ``parent_pid`` is the server's pid as recorded when it started this process."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ[TRAINING_PROCESS_ENV] = "1"  # the cost meter counts this whole process as the fit's
    _die_with_parent(parent_pid)
    with contextlib.suppress(OSError):
        os.nice(5)


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``), and exit now if the
    parent died already. The parent is known by the pid it recorded, never by the number 1:
    as the main process of a container (PID 1 of its namespace) a living parent has pid 1."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not available: the pool's own checks remain
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect (we were re-parented)
        os._exit(1)
