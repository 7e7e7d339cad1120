"""``FailureThrottle``: after ``limit`` authentication failures from one client address within
a window, that address is refused (429, Retry-After) until the window ends, however good its
next guess. In-process, per replica; the memory it holds is bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_ADDRESSES = 10_000


class FailureThrottle:
    def __init__(self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[str, tuple[float, int]] = {}  # address -> (window start, failures in it)
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> float | None:
        """Seconds until this address may try again, or None when it may now."""
        entry = self._failures.get(address)
        if entry is None or entry[1] < self.limit:
            return None
        left = entry[0] + self.window - self.clock()
        return left if left > 0 else None

    def failed(self, address: str) -> None:
        now = self.clock()
        with self._lock:
            start, count = self._failures.get(address, (now, 0))
            if now - start >= self.window:
                start, count = now, 0
            if len(self._failures) >= MAX_ADDRESSES and address not in self._failures:
                self._forget_old(now)
            self._failures[address] = (start, count + 1)

    def _forget_old(self, now: float) -> None:
        stale = [a for a, (start, _) in self._failures.items() if now - start >= self.window]
        for address in stale or list(self._failures)[: MAX_ADDRESSES // 2]:
            del self._failures[address]
