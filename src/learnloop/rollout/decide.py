"""What a rollout does next, from one look at its evidence. Pure logic, no I/O.

The rules, in order (``settings`` is the policy in force for the rollout):

1. a tripped guardrail rolls the challenger back at once;
2. with at least ``canary_min_feedback`` judged answers on each arm, *shown worse* by the
   always-valid sequential test (``evaluation.sequential``: the interval of B minus A
   accuracy, level ``alpha``, wholly below 0) rolls it back (an A/B test concludes);
3. a paused rollout holds: no step, no promotion, no budget (rules 1-2 still act);
4. with at least ``canary_min_feedback`` judged answers per arm, it is promoted when it is
   *good enough* per ``canary_require``:
   * ``no_harm`` (default): its schedule is complete (a canary on its last step for
     ``canary_step_seconds``; a shadow running that long) and it does not lean worse. The
     offline gate has already shown the candidate better on held-out feedback; live traffic
     is there to catch what offline data cannot show (a broken artifact, a shifted input, a
     slow model), and it does;
   * ``non_inferior``: the interval's lower end above ``-canary_margin``;
   * ``superior``: the interval's lower end above 0.
   An A/B test promotes B when shown better and the policy's ``auto_promote`` is on, and
   concludes with its report when ``auto_promote`` is off;
5. past ``canary_max_seconds`` or ``canary_max_feedback`` per arm, an undecided rollout ends
   per ``canary_on_inconclusive`` (an A/B test concludes "inconclusive");
6. a canary moves to its next traffic step after ``canary_step_seconds`` on the current one,
   unless it leans worse: estimate + one standard error below ``-canary_margin`` (about 84%
   one-sided confidence: too little to roll back on, enough to wait before giving the
   challenger more traffic). A step on which the challenger answered no request has not been
   passed, however long it lasted (nor has the last one, for ``no_harm``).

A ``no_harm`` promotion says in words what its interval can and cannot rule out: when the
interval's lower end lies below ``-canary_margin``, the reason says that a loss that large is
not excluded and how much feedback per arm would exclude it.

The test stays valid however often it is looked at, so the controller looks every few seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from learnloop.domain import Rollout, RolloutStatus, Strategy
from learnloop.evaluation.power import plan_sample_size
from learnloop.evaluation.sequential import SequentialResult
from learnloop.rollout.guardrails import GuardrailCheck

Action = Literal["hold", "step", "promote", "rollback", "conclude"]


@dataclass(frozen=True)
class Evidence:
    test: SequentialResult
    guardrails: list[GuardrailCheck]
    unknown: int = 0  # feedback that says nothing about being right (e.g. a rating of 3)
    served_on_step: int | None = None  # a canary: requests its challenger answered on the current step


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


def _step_served(evidence: Evidence) -> bool:
    """Whether the challenger answered traffic on its current step (unknown counts as yes)."""
    return evidence.served_on_step is None or evidence.served_on_step > 0


def _schedule_done(rollout: Rollout, evidence: Evidence, now: datetime) -> bool:
    s = rollout.settings.rollout
    if rollout.strategy == Strategy.CANARY:
        last = rollout.step + 1 >= len(rollout.steps)
        on_step = (now - rollout.step_started_at).total_seconds()
        return last and on_step >= s.canary_step_seconds and _step_served(evidence)
    return (now - rollout.started_at).total_seconds() >= s.canary_step_seconds


def no_harm_in_words(rollout: Rollout, test: SequentialResult) -> str:
    """What a ``no_harm`` promotion's interval rules out, in words."""
    s = rollout.settings
    margin = s.rollout.canary_margin
    low, high = 100 * test.ci_low, 100 * test.ci_high
    if test.ci_low >= -margin:
        return (
            f"no harm shown, and the interval [{low:+.0f}, {high:+.0f}] points rules out a loss beyond {100 * margin:g}"
        )
    words = (
        f"no harm shown, but the interval [{low:+.0f}, {high:+.0f}] points cannot rule out a loss larger than "
        f"{100 * margin:g} points"
    )
    baseline = test.rate_a
    if baseline is not None and baseline - margin > 0 and baseline < 1:
        try:
            needed = plan_sample_size(baseline, -margin, alpha=s.gate.alpha).sequential_per_arm
        except ValueError:
            return words
        words += f"; raise canary_min_feedback to about {needed} judged answers per arm to rule it out"
    return words


def _good_enough(rollout: Rollout, evidence: Evidence, now: datetime) -> str | None:
    """Why the challenger may be promoted now, or None."""
    s = rollout.settings.rollout
    test = evidence.test
    if rollout.strategy == Strategy.AB:
        return "shown better" if test.shown_better(0.0) and rollout.settings.gate.auto_promote else None
    if s.canary_require == "superior":
        return "shown better" if test.shown_better(0.0) else None
    if s.canary_require == "non_inferior":
        return f"shown not worse than {_pts(-s.canary_margin)}" if test.shown_non_inferior(s.canary_margin) else None
    if _schedule_done(rollout, evidence, now) and not leans_worse(test, s.canary_margin):
        return "schedule complete; " + no_harm_in_words(rollout, test)
    return None


def decide(rollout: Rollout, evidence: Evidence, now: datetime) -> Decision:
    s = rollout.settings.rollout
    test = evidence.test
    ab = rollout.strategy == Strategy.AB
    tripped = [g for g in evidence.guardrails if g.tripped]
    if tripped:
        return Decision("rollback", "guardrail tripped: " + "; ".join(g.message for g in tripped))
    enough = min(test.n_a, test.n_b) >= s.canary_min_feedback
    if enough and test.shown_worse(0.0):
        return Decision("conclude" if ab else "rollback", "shown worse: " + describe(test))
    if rollout.status == RolloutStatus.PAUSED:
        return Decision("hold", "paused")
    if enough and (why := _good_enough(rollout, evidence, now)):
        return Decision("promote", f"{why}: " + describe(test))
    if ab and enough and test.shown_better(0.0):
        return Decision("conclude", "shown better (auto_promote is off: report only): " + describe(test))

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

    if rollout.strategy == Strategy.CANARY and rollout.step + 1 < len(rollout.steps):
        on_step = (now - rollout.step_started_at).total_seconds()
        if on_step >= s.canary_step_seconds and not _step_served(evidence):
            return Decision(
                "hold",
                f"{on_step:.0f} s on {rollout.share:.0%}, but the challenger answered no request on this step: "
                "it counts once traffic reaches it",
            )
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
