"""What users said about a generative model's answers, summed up for people to read. Pure.

``summarize_feedback(events)`` counts every feedback event as it came (no votes resolved: that
is curation's job, ``curate``): the ratings 1-5, thumbs, implicit signals by name, corrections,
and explicit preferences by the *source* of each side (an external provider's
``source_model``, else the version that answered, ``v3``; ``standalone`` for a preference
between two texts). Ratings on logged answers also make a series: per version and time bucket,
the mean rating with a 95% Student-t interval (mean +- t(0.975, n-1) * s / sqrt(n), clipped to
1-5; none for a bucket of one rating).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from learnloop.domain import FeedbackEvent, FeedbackKind, Served

RATINGS = (1, 2, 3, 4, 5)
CONFIDENCE = 0.95
MAX_BUCKETS = 30
BUCKETS = (
    timedelta(minutes=1),
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(weeks=1),
    timedelta(days=30),
)
INTERVAL_RULE = "95% Student-t interval of the mean per version and time bucket"


@dataclass(frozen=True)
class RatingPoint:
    """The ratings of one version's answers given in one time bucket (``start`` .. + bucket)."""

    version: int
    start: datetime
    n: int
    mean: float
    low: float | None
    high: float | None


@dataclass(frozen=True)
class PreferenceCount:
    chosen: str  # the chosen answer's source ("claude-sonnet", "v2", "standalone")
    rejected: str
    n: int


@dataclass(frozen=True)
class FeedbackSummary:
    ratings: dict[int, int] = field(default_factory=lambda: dict.fromkeys(RATINGS, 0))
    rating_series: tuple[RatingPoint, ...] = ()
    bucket: timedelta = BUCKETS[0]
    thumbs: dict[str, int] = field(default_factory=lambda: {"up": 0, "down": 0})
    implicit: dict[str, int] = field(default_factory=dict)
    corrections: int = 0
    preferences: tuple[PreferenceCount, ...] = ()

    @property
    def rated(self) -> int:
        return sum(self.ratings.values())

    @property
    def mean_rating(self) -> float | None:
        n = self.rated
        return sum(r * c for r, c in self.ratings.items()) / n if n else None


def source_of(served: Served | None) -> str:
    """Who made an answer: the external provider it names, else the version that answered
    (``not logged yet``: an answer whose prediction is not in the log yet)."""
    if served is None:
        return "not logged yet"
    source = served.answer.get("source_model")
    return str(source) if source else f"v{served.version}"


def mean_interval(values: list[int]) -> tuple[float, float | None, float | None]:
    """The mean of ``values`` with its 95% Student-t interval, clipped to the rating scale."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    from scipy.stats import t as student_t

    half = float(student_t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n)
    return mean, max(RATINGS[0], mean - half), min(RATINGS[-1], mean + half)


def bucket_for(times: list[datetime]) -> timedelta:
    """The smallest bucket that splits the span of ``times`` into at most ``MAX_BUCKETS``."""
    span = max(times) - min(times) if times else timedelta(0)
    return next((b for b in BUCKETS if span / b <= MAX_BUCKETS), BUCKETS[-1])


def _floor(at: datetime, bucket: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=at.tzinfo)
    return epoch + ((at - epoch) // bucket) * bucket


def summarize_feedback(events: Iterable[FeedbackEvent]) -> FeedbackSummary:
    """The counts and the rating series of ``events`` (see the module doc)."""
    ratings: Counter[int] = Counter()
    thumbs: Counter[str] = Counter()
    implicit: Counter[str] = Counter()
    preferences: Counter[tuple[str, str]] = Counter()
    corrections = 0
    rated: list[tuple[int, datetime, int]] = []  # version, time, rating
    for event in events:
        payload = event.feedback.payload
        if event.kind == FeedbackKind.RATING:
            ratings[int(payload["rating"])] += 1
            if event.served is not None:
                rated.append((event.served.version, event.created_at, int(payload["rating"])))
        elif event.kind == FeedbackKind.THUMBS:
            thumbs[str(payload.get("thumbs"))] += 1
        elif event.kind == FeedbackKind.IMPLICIT:
            implicit[str(payload.get("signal"))] += 1
        elif event.kind == FeedbackKind.CORRECTION:
            corrections += 1
        elif event.kind == FeedbackKind.PREFERENCE:
            if event.prediction_id is None:
                preferences["standalone", "standalone"] += 1
            else:
                preferences[source_of(event.served), source_of(event.related)] += 1
    bucket = bucket_for([at for _, at, _ in rated])
    groups: dict[tuple[int, datetime], list[int]] = {}
    for version, at, rating in rated:
        groups.setdefault((version, _floor(at, bucket)), []).append(rating)
    series = tuple(
        RatingPoint(version, start, len(values), *mean_interval(values))
        for (version, start), values in sorted(groups.items(), key=lambda g: (g[0][1], g[0][0]))
    )
    return FeedbackSummary(
        ratings={r: ratings[r] for r in RATINGS},
        rating_series=series,
        bucket=bucket,
        thumbs={"up": thumbs["up"], "down": thumbs["down"]},
        implicit=dict(sorted(implicit.items())),
        corrections=corrections,
        preferences=tuple(PreferenceCount(c, r, n) for (c, r), n in preferences.most_common()),
    )
