"""The Retry-After of a full generation queue: the waiting requests run ``max_batch`` at a time
at the recent seconds per request, rounded up to whole seconds, within [1, 60]."""

from __future__ import annotations

import pytest

from learnloop.families.causal_lm.engine import retry_after_seconds


@pytest.mark.parametrize(
    ("ahead", "seconds", "max_batch", "expected"),
    [
        (64, 0.5, 8, 4),  # 64 waiting, 8 at a time, half a second each
        (64, 0.55, 8, 5),  # 4.4 s rounds up
        (3, 2.0, 1, 6),
        (1, 0.01, 8, 1),  # under a second: the lower bound
        (64, 30.0, 1, 60),  # half an hour: the upper bound
        (0, 5.0, 1, 1),
        (64, None, 8, 1),  # nothing measured yet: the lower bound
    ],
)
def test_retry_after_is_the_time_the_queue_ahead_needs_rounded_up_and_bounded(
    ahead: int, seconds: float | None, max_batch: int, expected: int
) -> None:
    assert retry_after_seconds(ahead, seconds, max_batch) == expected
