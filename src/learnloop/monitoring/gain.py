"""What a promotion bought on live traffic: the change in the online measure times the traffic.
Pure logic, no I/O.

The measure is the task's: for a classifier the online accuracy (one outcome per judged
answer, 1 right or 0 wrong by the task's outcome rule, as ``online_accuracy`` reads it); for a
generative model the mean rating (the latest rating of each rated answer, 1-5). ``before`` is
the previous champion's newest judged answers served before the promotion, ``after`` the new
champion's newest judged answers while it served. The change ``mean(after) - mean(before)``
gets a 95% percentile-bootstrap interval of the difference of two independent means
(``evaluation.two_sample_mean_diff_ci``: different answers to different traffic, so nothing
is paired), and the gain is the change times the answers the new version served as champion
(correct answers gained, or rating points). The two sides are different periods: a shift in
traffic between them moves the measure too, so this is a before/after comparison, not an
experiment. With fewer than ``min_judged`` judged answers on either side no gain is claimed,
and the reason says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from learnloop.domain import FeedbackEvent, FeedbackKind
from learnloop.evaluation.bootstrap import two_sample_mean_diff_ci
from learnloop.tasks import OutcomeRule

UNITS = {"accuracy": "correct answers", "rating": "rating points"}


@dataclass(frozen=True)
class OnlineGain:
    measure: str  # "accuracy" | "rating"
    before_version: int
    before_n: int
    before_mean: float | None
    after_n: int
    after_mean: float | None
    served: int  # answers the new version gave as champion
    claimed: bool  # enough judged answers on both sides to state a change
    reason: str
    delta: float | None = None  # mean(after) - mean(before)
    delta_ci: tuple[float, float] | None = None
    gain: float | None = None  # delta * served, in ``unit``
    gain_ci: tuple[float, float] | None = None

    @property
    def unit(self) -> str:
        return UNITS[self.measure]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"unit": self.unit}


def accuracy_outcomes(events: Iterable[FeedbackEvent], rule: OutcomeRule) -> list[float]:
    """1.0 or 0.0 per judged answer, by the task's outcome rule (feedback that says nothing
    about being right, a rating of 3, is left out)."""
    deciding = rule.deciding(sorted(events, key=lambda e: (e.created_at, e.id)))
    return [float(correct) for correct in (rule.outcome(e) for e in deciding) if correct is not None]


def rating_outcomes(events: Iterable[FeedbackEvent]) -> list[float]:
    """The latest rating of each rated answer."""
    latest: dict[str, FeedbackEvent] = {}
    for event in events:
        if event.kind != FeedbackKind.RATING or event.prediction_id is None:
            continue
        seen = latest.get(event.prediction_id)
        if seen is None or (event.created_at, event.id) > (seen.created_at, seen.id):
            latest[event.prediction_id] = event
    return [float(e.feedback.payload["rating"]) for e in latest.values()]


def online_gain(
    measure: str,
    before_version: int,
    before: Sequence[float],
    after: Sequence[float],
    served: int,
    *,
    min_judged: int,
    seed: int = 0,
) -> OnlineGain:
    """The change from ``before`` to ``after`` (one value per judged answer) and the gain over
    ``served`` answers, with 95% intervals; unclaimed below ``min_judged`` on either side."""
    b_mean = float(np.mean(before)) if len(before) else None
    a_mean = float(np.mean(after)) if len(after) else None
    base = OnlineGain(measure, before_version, len(before), b_mean, len(after), a_mean, served, False, "")
    if len(before) < min_judged or len(after) < min_judged:
        return replace(
            base,
            reason=f"too few judged answers to claim a change: {len(before)} before and {len(after)} after "
            f"the promotion, {min_judged} needed on each side",
        )
    assert b_mean is not None and a_mean is not None
    delta = a_mean - b_mean
    ci = two_sample_mean_diff_ci(before, after, seed=seed)
    assert ci is not None
    shown = "a gain" if ci[0] > 0 else "a loss" if ci[1] < 0 else "no change shown"
    return replace(
        base,
        claimed=True,
        delta=delta,
        delta_ci=ci,
        gain=delta * served,
        gain_ci=(ci[0] * served, ci[1] * served),
        reason=f"{measure} {b_mean:.3f} (n={len(before)}) -> {a_mean:.3f} (n={len(after)}): "
        f"{delta:+.3f}, 95% bootstrap CI [{ci[0]:+.3f}, {ci[1]:+.3f}] ({shown}), over {served} answers served",
    )
