"""What a rollout does next, from one look at its evidence. Pure logic, no I/O.

The rules, in order (``settings`` is the policy in force for the rollout):

1. a tripped guardrail rolls the challenger back at once (a shadow is stopped);
2. with at least ``canary_min_feedback`` judged answers on each arm, the always-valid
   sequential test (``evaluation.sequential``; B minus A accuracy, level ``alpha``) decides:
   * shown worse (the whole interval below 0): roll back;
   * shown good enough: promote. ``canary_require = non_inferior``: the interval's lower end
     above ``-canary_margin``; ``superior``: above 0;
   An A/B test ends at either outcome with a report (``concluded``) and promotes B only if it
   was shown better and the policy's ``auto_promote`` is on.
3. past ``canary_max_seconds`` or ``canary_max_feedback`` per arm, an undecided rollout ends
   per ``canary_on_inconclusive`` (an A/B test concludes "inconclusive");
4. a paused rollout holds (rule 1 still applies);
5. a canary moves to its next traffic step after ``canary_step_seconds`` on the current one,
   unless it already leans worse: estimate + one standard error below ``-canary_margin``
   (about 84% one-sided confidence: too little to roll back on, enough to wait before giving
   the challenger more traffic).

The test stays valid however often it is looked at, so the controller looks every few seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from learnloop.domain import Rollout, RolloutStatus, Strategy
from learnloop.evaluation.sequential import SequentialResult
from learnloop.rollout.guardrails import GuardrailCheck

Action = Literal["hold", "step", "promote", "rollback", "conclude"]


@dataclass(frozen=True)
class Evidence:
    test: SequentialResult
    guardrails: list[GuardrailCheck]
    unknown: int = 0  # feedback that says nothing about being right (e.g. a rating of 3)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    share: float | None = None  # the next share, for a step


def _pts(x: float) -> str:
    return f"{100 * x:+.1f} pts"


def leans_worse(test: SequentialResult, margin: float) -> bool:
    if test.rate_a is None or test.rate_b is None:
        return False
    variance = sum(
        p * (1 - p) / n
        for p, n in (
            ((test.rate_a * test.n_a + 1) / (test.n_a + 2), test.n_a),
            ((test.rate_b * test.n_b + 1) / (test.n_b + 2), test.n_b),
        )
    )
    return test.estimate + math.sqrt(variance) < -margin


def describe(test: SequentialResult) -> str:
    rate = "n/a" if test.rate_a is None else f"{test.rate_a:.1%}"
    rate_b = "n/a" if test.rate_b is None else f"{test.rate_b:.1%}"
    return (
        f"challenger {rate_b} (n={test.n_b}) vs baseline {rate} (n={test.n_a}): {_pts(test.estimate)}, "
        f"always-valid {1 - test.alpha:.0%} CI [{_pts(test.ci_low)}, {_pts(test.ci_high)}] ({test.test})"
    )


def decide(rollout: Rollout, evidence: Evidence, now: datetime) -> Decision:
    s = rollout.settings
    test = evidence.test
    ab = rollout.strategy == Strategy.AB
    tripped = [g for g in evidence.guardrails if g.tripped]
    if tripped:
        return Decision("rollback", "guardrail tripped: " + "; ".join(g.message for g in tripped))

    enough = min(test.n_a, test.n_b) >= s.canary_min_feedback
    if enough:
        if test.shown_worse(0.0):
            reason = "shown worse: " + describe(test)
            return Decision("conclude" if ab else "rollback", reason)
        if s.canary_require == "superior":
            good = test.shown_better(0.0)
            what = "shown better"
        else:
            good = test.shown_non_inferior(s.canary_margin)
            what = f"shown not worse than {_pts(-s.canary_margin)}"
        if ab:
            if test.shown_better(0.0):
                action: Action = "promote" if s.auto_promote else "conclude"
                return Decision(action, "shown better: " + describe(test))
        elif good:
            return Decision("promote", f"{what}: " + describe(test))

    elapsed = (now - rollout.started_at).total_seconds()
    over_time = elapsed >= s.canary_max_seconds
    over_feedback = min(test.n_a, test.n_b) >= s.canary_max_feedback
    if over_time or over_feedback:
        budget = (
            f"{elapsed:.0f} s >= canary_max_seconds {s.canary_max_seconds:g}"
            if over_time
            else f"{min(test.n_a, test.n_b)} judged answers per arm >= canary_max_feedback {s.canary_max_feedback}"
        )
        reason = f"inconclusive after {budget}: " + describe(test)
        if ab:
            return Decision("conclude", reason)
        return Decision("promote" if s.canary_on_inconclusive == "promote" else "rollback", reason)

    if rollout.status == RolloutStatus.PAUSED:
        return Decision("hold", "paused")
    if rollout.strategy == Strategy.CANARY and rollout.step + 1 < len(rollout.steps):
        on_step = (now - rollout.step_started_at).total_seconds()
        if on_step >= s.canary_step_seconds and not leans_worse(test, s.canary_margin):
            share = rollout.steps[rollout.step + 1]
            return Decision(
                "step",
                f"{on_step:.0f} s on {rollout.share:.0%} with no guardrail tripped and no sign of harm; "
                f"next step {share:.0%}: " + describe(test),
                share,
            )
    waiting = "" if enough else f"; the test decides from {s.canary_min_feedback} judged answers per arm"
    return Decision("hold", "collecting evidence" + waiting)
