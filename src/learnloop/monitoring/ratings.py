"""The serving version's online mean rating and its alarm. Pure logic, no I/O.

* **Online mean rating**: the ratings (1-5) of the champion's newest ``accuracy_window`` rated
  answers, the latest rating of each answer, with a 95% Student-t interval of their mean
  (``tasks.generation.ratings.mean_interval``, the rating chart's interval).
* **Rating alarm** (only with ``min_mean_rating`` set, from ``MIN_RATED`` ratings): the mean is
  *shown* below ``min_mean_rating`` when the upper end of its interval lies below it.
  ``PerformanceService`` writes ``rating_dropped`` (and ``rating_recovered`` when it clears)
  once per transition and reports the drop as a ``Finding`` of kind ``rating_drop``; whether a
  retrain follows is ``triggers``' decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from learnloop.domain import FeedbackEvent, FeedbackKind
from learnloop.tasks.generation.ratings import mean_interval

MIN_RATED = 30  # rated answers before the mean rating may raise an alarm


@dataclass(frozen=True)
class OnlineRating:
    version: int | None
    n: int  # rated answers (one rating each: the latest)
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    threshold: float | None  # policy.min_mean_rating; None: the alarm is off
    alarm: bool
    reason: str


def newest_ratings(events: Iterable[FeedbackEvent], window: int) -> list[int]:
    """The latest rating of each of the ``window`` newest rated answers (``events`` newest first)."""
    ratings: dict[str, int] = {}
    for event in events:
        if event.kind != FeedbackKind.RATING or event.prediction_id is None or event.prediction_id in ratings:
            continue
        if len(ratings) == window:
            break
        ratings[event.prediction_id] = int(event.feedback.payload["rating"])
    return list(ratings.values())


def online_rating(ratings: list[int], version: int | None, minimum: float) -> OnlineRating:
    """The mean of ``ratings`` with its interval, judged against ``minimum`` (0: no alarm)."""
    threshold = minimum or None
    if not ratings:
        return OnlineRating(version, 0, None, None, None, threshold, False, "no rated answers yet")
    mean, low, high = mean_interval(ratings)
    n = len(ratings)
    shown = f"mean rating {mean:.2f} (n={n}" + (f", 95% CI [{low:.2f}, {high:.2f}])" if high is not None else ")")
    if threshold is None:
        return OnlineRating(version, n, mean, low, high, None, False, f"{shown}; no min_mean_rating set")
    if n < MIN_RATED or high is None:
        reason = f"{shown}; {MIN_RATED} rated answers needed before an alarm"
        return OnlineRating(version, n, mean, low, high, threshold, False, reason)
    alarm = high < threshold
    verdict = "SHOWN BELOW" if alarm else "not shown below"
    reason = f"{shown} vs min_mean_rating {threshold:g}: {verdict}"
    return OnlineRating(version, n, mean, low, high, threshold, alarm, reason)
