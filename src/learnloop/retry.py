"""When to try a failed request again (a webhook delivery, a call of the Python client):
exponential backoff with jitter, capped, honouring the other side's ``Retry-After``. Standard
library only, on the ground floor, so the client shares it without importing the server."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """Attempt ``n`` (1-based) that failed is retried after ``base * factor**(n-1)`` seconds,
    capped at ``cap``, times a random factor in ``[1 - jitter, 1 + jitter]`` (so receivers
    that failed together are not hit together again). With the defaults: about 1, 2, 4, 8, ...
    512 s, 10 attempts in all, the last about 17 minutes after the first. A ``Retry-After``
    longer than the backoff wins, up to ``max_retry_after``."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 600.0
    max_attempts: int = 10
    jitter: float = 0.2
    max_retry_after: float = 3600.0

    def __post_init__(self) -> None:
        if self.base <= 0 or self.factor < 1 or self.cap < self.base or self.max_attempts < 1:
            raise ValueError("RetryPolicy needs base > 0, factor >= 1, cap >= base, max_attempts >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("RetryPolicy.jitter must be in [0, 1)")

    def nominal(self, attempt: int) -> float:
        """The delay after failed attempt ``attempt`` before jitter."""
        return min(self.cap, self.base * self.factor ** (attempt - 1))

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float | None:
        """Seconds to wait after failed attempt ``attempt``; ``None`` once attempts are spent."""
        if attempt >= self.max_attempts:
            return None
        wait = self.nominal(attempt) * (1 + self.jitter * (2 * rng.random() - 1))
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date; None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
