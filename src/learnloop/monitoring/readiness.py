"""Liveness and readiness, answered from memory.

``DatabaseWatch`` checks the database on a thread of its own (``SELECT 1`` every
``interval``, bounded by the statement timeout) and remembers what it saw, so that ``/health``
and ``/ready`` never wait for the database: a stalled database cannot stall the probes that
are meant to report it. ``readiness`` adds what the writers report (a hot-path write hung
past the stall threshold, the SQLite file gone) and whether every model's champion loaded.
Nothing here names a path: these answers go to unauthenticated clients.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from learnloop.store.db import Database

log = logging.getLogger(__name__)


class DatabaseWatch:
    def __init__(self, db: Database, *, interval: float = 1.0, stall_seconds: float = 5.0) -> None:
        self._db = db
        self._interval = interval
        self.stall_seconds = stall_seconds
        self._last_ok: float | None = None
        self._error: str | None = None
        self._checking_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.check()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="learnloop-db-watch", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)  # a check hung in a stalled database ends with the process
            self._thread = None

    def check(self) -> None:
        self._checking_since = time.monotonic()
        try:
            self._db.ping()
        except Exception as exc:
            if self._error is None:
                log.warning("database check failed: %s", exc)
            self._error = "gone" if self._db.lost else f"unreachable ({type(exc).__name__})"
        else:
            self._last_ok, self._error = time.monotonic(), None
        finally:
            self._checking_since = None

    def status(self) -> str:
        """ "ok", "unknown" (never checked), "gone", "unreachable (...)" or "stalled (...)"."""
        if self._db.lost:
            return "gone"
        checking = self._checking_since
        if checking is not None and time.monotonic() - checking > self.stall_seconds:
            return f"stalled (a check has waited {time.monotonic() - checking:.0f} s)"
        if self._error is not None:
            return self._error
        return "ok" if self._last_ok is not None else "unknown"

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.check()


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: dict[str, str]


def stalled(since: float | None, threshold: float, what: str) -> str:
    """ "ok", or how long ``what`` has been hung (``since``: a monotonic time, or None)."""
    if since is None or time.monotonic() - since <= threshold:
        return "ok"
    return f"stalled ({what} for {time.monotonic() - since:.0f} s)"
