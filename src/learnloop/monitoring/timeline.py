"""Online accuracy over time at the resolution of the data: consecutive judged answers in
buckets of equal count rather than calendar days.

Answers are ordered by when they were served; one outcome per prediction (the task's
``OutcomeRule``, as for online accuracy). A bucket holds ``size`` consecutive judged answers
of one version, ``size = max(min_size, ceil(n / points))`` for ``n`` judged answers in all, so
a busy hour gets many points and a quiet week few; a change of serving version starts a new
bucket (which may then hold fewer). Each bucket carries its 95% Wilson interval and the rank
of its first answer, so a chart can lay answers out evenly instead of on a time axis.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from learnloop.domain import FeedbackEvent
from learnloop.evaluation.metrics import wilson_interval
from learnloop.tasks import OutcomeRule

POINTS = 50
MIN_BUCKET = 20


@dataclass(frozen=True)
class AccuracyPoint:
    version: int
    start: datetime  # when the bucket's first answer was served
    end: datetime  # and its last
    first: int  # rank of its first answer among all judged answers (0-based)
    n: int
    accuracy: float
    ci_low: float
    ci_high: float


def judged_outcomes(events: Iterable[FeedbackEvent], rule: OutcomeRule) -> list[tuple[datetime, int, bool]]:
    """(served at, version, right) per judged prediction, in the order answers were served."""
    found = []
    for event in rule.deciding(sorted(events, key=lambda e: (e.created_at, e.id))):
        correct = rule.outcome(event)
        if correct is not None and event.served is not None:
            found.append((event.served.created_at, event.served.version, bool(correct)))
    return sorted(found, key=lambda o: o[0])


def accuracy_timeline(
    events: Iterable[FeedbackEvent], rule: OutcomeRule, *, points: int = POINTS, min_size: int = MIN_BUCKET
) -> list[AccuracyPoint]:
    """The buckets of the module docstring, oldest first."""
    outcomes = judged_outcomes(events, rule)
    if not outcomes:
        return []
    size = max(min_size, math.ceil(len(outcomes) / points))
    out: list[AccuracyPoint] = []
    start = 0
    for i in range(1, len(outcomes) + 1):
        if i < len(outcomes) and i - start < size and outcomes[i][1] == outcomes[start][1]:
            continue
        bucket = outcomes[start:i]
        right = sum(o[2] for o in bucket)
        low, high = wilson_interval(right, len(bucket))
        out.append(
            AccuracyPoint(bucket[0][1], bucket[0][0], bucket[-1][0], start, len(bucket), right / len(bucket), low, high)
        )
        start = i
    return out
