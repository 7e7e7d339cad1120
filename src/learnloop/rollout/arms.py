"""Live feedback -> outcomes per arm of a rollout. Pure logic, no I/O.

What makes one answer good is the task's rule (``learnloop.tasks.OutcomeRule``): it picks the
deciding event of each prediction and says whether an answer was good by it (or that the
feedback says nothing). Here the outcomes are counted per arm:

* a canary or A/B test compares what the challenger answered on the ``canary`` route (arm B)
  with what the baseline answered on its own route (arm A); requests a failed challenger
  handed to the champion (route ``fallback``) belong to neither;
* a shadow is judged on the same requests as the served answer: the feedback on the served
  answer says whether the shadow's answer would have been good too (when it can say).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from learnloop.domain import FeedbackEvent
from learnloop.evaluation.sequential import ArmCounts
from learnloop.tasks import OutcomeRule


@dataclass(frozen=True)
class ArmOutcomes:
    a: ArmCounts
    b: ArmCounts
    unknown: int  # predictions with feedback that says nothing about being good


def two_arm_outcomes(
    events: Iterable[FeedbackEvent], rule: OutcomeRule, *, a_version: int, b_version: int
) -> ArmOutcomes:
    """Per-arm good/total for a canary or A/B test (events oldest first)."""
    counts = {"a": [0, 0], "b": [0, 0]}
    unknown = 0
    for event in rule.deciding(events):
        served = event.served
        if served is None:
            continue
        if served.route == "canary" and served.version == b_version:
            arm = "b"
        elif served.route in ("champion", "baseline") and served.version == a_version:
            arm = "a"
        else:
            continue
        good = rule.outcome(event)
        if good is None:
            unknown += 1
            continue
        counts[arm][0] += 1
        counts[arm][1] += int(good)
    return ArmOutcomes(ArmCounts(*counts["a"]), ArmCounts(*counts["b"]), unknown)


@dataclass(frozen=True)
class PairedOutcomes:
    both: int
    a_only: int
    b_only: int
    neither: int
    unknown: int

    @property
    def n(self) -> int:
        return self.both + self.a_only + self.b_only + self.neither


def paired_outcomes(events: Iterable[FeedbackEvent], rule: OutcomeRule) -> PairedOutcomes:
    """Served answer (A) and shadow answer (B) on the same requests, judged by the same feedback."""
    cells = {"both": 0, "a_only": 0, "b_only": 0, "neither": 0}
    unknown = 0
    for event in rule.deciding(events):
        a = rule.outcome(event)
        b = None if event.shadow_answer is None else rule.outcome(event, event.shadow_answer)
        if a is None or b is None:
            unknown += 1
            continue
        cells["both" if a and b else "a_only" if a else "b_only" if b else "neither"] += 1
    return PairedOutcomes(**cells, unknown=unknown)
