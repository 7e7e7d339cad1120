"""The pure rules of rollouts: sticky splits, outcomes from feedback, guardrails, decisions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chisquare

from feedback_events import feedback_event
from learnloop.domain import FeedbackEvent, Rollout, RolloutStatus, Strategy
from learnloop.evaluation.sequential import ArmCounts, SequentialResult, two_sample
from learnloop.policy import Policy
from learnloop.rollout import guardrails
from learnloop.rollout.arms import paired_outcomes, two_arm_outcomes
from learnloop.rollout.decide import Evidence, decide
from learnloop.routing.split import bucket, in_share
from learnloop.tasks.classification.outcomes import LabelOutcomes, answer_correct

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BINARY = ("neg", "pos")


# -- sticky splits ---------------------------------------------------------------------------


def test_buckets_are_uniform_and_differ_between_rollouts() -> None:
    keys = [f"user-{i}" for i in range(20_000)]
    first = np.array([bucket(1, k) for k in keys])
    assert first.min() >= 0 and first.max() < 1
    counts, _ = np.histogram(first, bins=20, range=(0, 1))
    assert chisquare(counts).pvalue > 1e-4
    second = np.array([bucket(2, k) for k in keys])
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.05  # a new rollout reshuffles who goes first
    assert [bucket(1, k) for k in keys[:50]] == list(first[:50])  # deterministic


@given(st.text(min_size=1, max_size=40), st.integers(1, 10**6), st.floats(0, 1), st.floats(0, 1))
def test_a_growing_share_never_moves_a_subject_back(key: str, rollout: int, s1: float, s2: float) -> None:
    low, high = sorted((s1, s2))
    if in_share(rollout, key, low):
        assert in_share(rollout, key, high)
    assert not in_share(rollout, key, 0.0)


# -- outcomes --------------------------------------------------------------------------------


def fb(pid: str, kind: str, *, predicted: str = "pos", at: int = 0, **values: Any) -> FeedbackEvent:
    row = {"id": f"f{pid}{at}", "prediction_id": pid, "kind": kind, "label": None, "thumbs": None, "rating": None}
    row.update(predicted_label=predicted, created_at=T0 + timedelta(seconds=at), version=1, route="champion")
    row.update(values)
    return feedback_event(row)


@pytest.mark.parametrize(
    ("row", "labels", "expected"),
    [
        (fb("1", "label", label="pos"), BINARY, True),
        (fb("1", "label", label="neg"), BINARY, False),
        (fb("1", "thumbs", thumbs="up"), BINARY, True),
        (fb("1", "thumbs", thumbs="down"), BINARY, False),
        (fb("1", "rating", rating=5), BINARY, True),
        (fb("1", "rating", rating=1), BINARY, False),
        (fb("1", "rating", rating=3), BINARY, None),
        (fb("1", "thumbs", thumbs="down"), ("a", "b", "pos"), False),
    ],
)
def test_what_a_feedback_event_says_about_the_served_answer(
    row: FeedbackEvent, labels: tuple[str, ...], expected: bool | None
) -> None:
    assert answer_correct(row, labels) is expected


def test_a_shadow_answer_is_judged_by_the_feedback_on_the_served_one() -> None:
    assert answer_correct(fb("1", "thumbs", thumbs="up"), BINARY, {"label": "neg"}) is False
    assert answer_correct(fb("1", "thumbs", thumbs="down"), BINARY, {"label": "neg"}) is True
    labels = ("a", "b", "pos")
    assert answer_correct(fb("1", "thumbs", thumbs="down"), labels, {"label": "pos"}) is False  # same wrong answer
    assert answer_correct(fb("1", "thumbs", thumbs="down"), labels, {"label": "a"}) is None  # unknown


def test_arms_count_one_outcome_per_prediction_and_leave_fallbacks_out() -> None:
    rows = [
        fb("1", "thumbs", thumbs="down", at=0),
        fb("1", "label", label="pos", at=1),  # the label wins: right
        fb("1", "thumbs", thumbs="down", at=2),  # a later thumbs does not beat a label
        fb("2", "label", label="neg", at=3, version=2, route="canary"),  # wrong
        fb("3", "label", label="pos", at=4, version=2, route="canary"),  # right
        fb("4", "label", label="pos", at=5, version=1, route="fallback"),  # B's request, A answered
        fb("5", "rating", rating=3, at=6, version=2, route="canary"),  # says nothing
        fb("6", "label", label="pos", at=7, version=3, route="champion"),  # another version
    ]
    arms = two_arm_outcomes(rows, LabelOutcomes(BINARY), a_version=1, b_version=2)
    assert (arms.a, arms.b, arms.unknown) == (ArmCounts(1, 1), ArmCounts(2, 1), 1)


def test_paired_outcomes_fill_the_four_cells() -> None:
    rows = [
        fb("1", "label", label="pos", shadow_label="pos"),  # both
        fb("2", "label", label="pos", shadow_label="neg"),  # a only
        fb("3", "label", label="neg", shadow_label="neg"),  # b only
        fb("4", "label", label="neg", predicted="neg", shadow_label="pos"),  # a only
        fb("5", "rating", rating=3, shadow_label="pos"),  # unknown
    ]
    cells = paired_outcomes(rows, LabelOutcomes(BINARY))
    assert (cells.both, cells.a_only, cells.b_only, cells.neither, cells.unknown) == (1, 2, 1, 0, 1)


# -- guardrails ------------------------------------------------------------------------------


def test_error_guardrail_trips_on_a_shown_error_rate_not_on_one_failure() -> None:
    policy = Policy.of(guardrail_max_error_rate=0.01)
    assert guardrails.error_rate(5, 10, policy).tripped
    assert not guardrails.error_rate(1, 1000, policy).tripped
    assert not guardrails.error_rate(2, 2, policy).tripped  # fewer than three failures: not yet
    assert not guardrails.error_rate(0, 0, policy).tripped


def test_latency_guardrail_compares_p99s_above_a_floor() -> None:
    policy = Policy.of(guardrail_latency_ratio=3.0, guardrail_min_predictions=100)
    fast = [0.05] * 200
    assert not guardrails.latency(fast, [0.5] * 200, policy).tripped  # 10x of 0.05 ms is under the 1 ms floor
    slow = guardrails.latency([2.0] * 200, [9.0] * 200, policy)
    assert slow.tripped and slow.value == pytest.approx(4.5)
    assert not guardrails.latency([2.0] * 50, [9.0] * 50, policy).tripped  # too few answers


def test_prediction_shift_guardrail_needs_a_large_and_significant_shift() -> None:
    policy = Policy.of(guardrail_max_label_shift=0.25, guardrail_min_predictions=100)
    even = ["neg", "pos"] * 300
    assert not guardrails.label_shift(even, ["neg"] * 330 + ["pos"] * 270, BINARY, policy).tripped
    skewed = guardrails.label_shift(even, ["neg"] * 540 + ["pos"] * 60, BINARY, policy)
    assert skewed.tripped and skewed.value == pytest.approx(0.4)


# -- decisions -------------------------------------------------------------------------------


def rollout(strategy: Strategy = Strategy.CANARY, **policy: Any) -> Rollout:
    settings = Policy.of(**{"canary_min_feedback": 50, "canary_step_seconds": 60, **policy})
    return Rollout(
        id=1,
        model="m",
        version=2,
        baseline_version=1,
        strategy=strategy,
        status=RolloutStatus.RUNNING,
        share=settings.rollout.steps[0],
        steps=settings.rollout.steps,
        step=0,
        settings=settings,
        stats={},
        actor="t",
        reason=None,
        started_at=T0,
        step_started_at=T0,
        updated_at=T0,
    )


def evidence(a: tuple[int, int], b: tuple[int, int], *tripped: str) -> Evidence:
    test = two_sample(ArmCounts(*a), ArmCounts(*b))
    checks = [guardrails.GuardrailCheck(name, True, 1.0, 0.5, f"{name} tripped") for name in tripped]
    return Evidence(test, checks)


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_tripped_guardrail_rolls_back_whatever_the_test_says() -> None:
    d = decide(rollout(), evidence((100, 50), (100, 99), "latency"), later(1))
    assert d.action == "rollback" and "latency tripped" in d.reason


def test_shown_worse_rolls_back_and_shown_not_worse_promotes_when_that_is_required() -> None:
    assert decide(rollout(), evidence((400, 340), (400, 200)), later(1)).action == "rollback"
    strict = rollout(canary_require="non_inferior")
    good = decide(strict, evidence((3000, 2550), (3000, 2610)), later(1))
    assert good.action == "promote" and "shown not worse" in good.reason
    # Not worse is not better: a rollout that must be superior keeps collecting.
    same = evidence((10_000, 8500), (10_000, 8510))
    assert decide(strict, same, later(1)).action == "promote"
    assert decide(rollout(canary_require="superior"), same, later(1)).action == "hold"


def test_no_harm_promotes_when_the_schedule_completes_without_harm() -> None:
    r = rollout(canary_steps="5,25,50")  # canary_require=no_harm is the default
    quiet = evidence((300, 255), (100, 84))  # -1 pt, far from shown either way
    assert decide(r, quiet, later(61)).action == "step"  # not on the last step yet
    last = replace(r, step=2, share=0.5, step_started_at=later(100))
    assert decide(last, quiet, later(130)).action == "hold"  # not 60 s on it yet
    done = decide(last, quiet, later(161))
    assert done.action == "promote" and "schedule complete; no harm shown" in done.reason
    assert decide(last, evidence((300, 270), (100, 70)), later(161)).action == "hold"  # leans worse: wait
    too_little = replace(last, settings=last.settings.updated({"canary_min_feedback": 200}))
    assert decide(too_little, quiet, later(161)).action == "hold"
    shadow = rollout(Strategy.SHADOW)
    assert decide(shadow, quiet, later(30)).action == "hold"
    assert decide(shadow, quiet, later(61)).action == "promote"


def test_a_no_harm_promotion_says_what_its_interval_cannot_rule_out() -> None:
    last = replace(rollout(canary_steps="5,25,50"), step=2, share=0.5, step_started_at=later(100))
    wide = decide(last, evidence((100, 85), (100, 85)), later(161))  # n=100 per arm: a wide interval
    assert wide.action == "promote"
    assert "cannot rule out a loss larger than 2 points" in wide.reason
    needed = int(wide.reason.split("raise canary_min_feedback to about ")[1].split()[0])
    assert needed > 100
    narrow = decide(last, evidence((40_000, 34_000), (40_000, 34_000)), later(161))
    assert narrow.action == "promote" and "rules out a loss beyond 2" in narrow.reason


def test_a_canary_step_that_served_no_request_is_not_passed() -> None:
    r = rollout(canary_steps="5,25,50")
    quiet = evidence((300, 255), (100, 84))
    idle = replace(quiet, served_on_step=0)
    held = decide(r, idle, later(600))
    assert held.action == "hold" and "answered no request on this step" in held.reason
    assert decide(r, replace(quiet, served_on_step=3), later(61)).action == "step"
    last = replace(r, step=2, share=0.5, step_started_at=later(100))
    assert decide(last, idle, later(600)).action == "hold"  # the last step neither
    assert decide(last, replace(quiet, served_on_step=1), later(161)).action == "promote"


def test_a_paused_rollout_is_never_promoted_but_still_rolled_back() -> None:
    r = replace(rollout(canary_require="superior"), status=RolloutStatus.PAUSED)
    assert decide(r, evidence((3000, 2400), (3000, 2700)), later(1)).action == "hold"
    assert decide(r, evidence((400, 340), (400, 200)), later(1)).action == "rollback"
    assert (
        decide(
            replace(r, settings=r.settings.updated({"canary_max_seconds": 10})), evidence((5, 4), (5, 4)), later(20)
        ).action
        == "hold"
    )


def test_nothing_is_decided_below_the_minimum_feedback() -> None:
    d = decide(rollout(canary_min_feedback=500), evidence((400, 340), (40, 0)), later(1))
    assert d.action == "hold" and "500" in d.reason


def test_a_canary_steps_after_its_time_unless_it_leans_worse() -> None:
    r = rollout(canary_steps="5,25,50")
    assert decide(r, evidence((20, 17), (5, 4)), later(30)).action == "hold"
    step = decide(r, evidence((20, 17), (5, 4)), later(61))
    assert (step.action, step.share) == ("step", 0.25)
    assert decide(r, evidence((20, 18), (5, 4)), later(61)).action == "step"  # -10 pts of 5: noise
    assert decide(r, evidence((200, 180), (50, 30)), later(61)).action == "hold"  # -30 pts of 50: wait
    last = replace(r, step=2, share=0.5)
    assert decide(last, evidence((20, 17), (5, 4)), later(61)).action == "hold"
    paused = replace(r, status=RolloutStatus.PAUSED)
    assert decide(paused, evidence((20, 17), (5, 4)), later(61)).action == "hold"
    assert decide(paused, evidence((20, 17), (5, 4), "errors"), later(61)).action == "rollback"
    assert decide(r, evidence((20, 17), (5, 4), "errors"), later(61)).reason.startswith("guardrail tripped")


def test_an_undecided_rollout_ends_per_policy_at_its_budget() -> None:
    undecided = evidence((200, 170), (200, 171))
    assert decide(rollout(canary_max_seconds=100), undecided, later(101)).action == "rollback"
    on_promote = rollout(canary_max_seconds=100, canary_on_inconclusive="promote")
    assert decide(on_promote, undecided, later(101)).action == "promote"
    by_feedback = decide(rollout(canary_max_feedback=200), undecided, later(1))
    assert by_feedback.action == "rollback" and "inconclusive" in by_feedback.reason
    assert decide(rollout(Strategy.AB, canary_max_seconds=100), undecided, later(101)).action == "conclude"


def test_an_ab_test_concludes_and_promotes_only_a_winner_when_allowed() -> None:
    better = evidence((3000, 2400), (3000, 2700))
    assert decide(rollout(Strategy.AB), better, later(1)).action == "promote"
    assert decide(rollout(Strategy.AB, auto_promote=False), better, later(1)).action == "conclude"
    assert decide(rollout(Strategy.AB), evidence((3000, 2700), (3000, 2400)), later(1)).action == "conclude"
    # Merely not worse is not a reason to switch in an A/B test.
    assert decide(rollout(Strategy.AB), evidence((3000, 2550), (3000, 2556)), later(1)).action == "hold"


def test_every_decision_reason_states_the_test_and_sample_sizes() -> None:
    d = decide(rollout(), evidence((400, 340), (400, 200)), later(1))
    test: SequentialResult = evidence((400, 340), (400, 200)).test
    assert f"n={test.n_b}" in d.reason and f"n={test.n_a}" in d.reason and test.test in d.reason


def test_length_shift_guardrail_needs_a_large_and_significant_change_of_the_median() -> None:
    policy = Policy.of(guardrail_max_length_shift=0.5, guardrail_min_predictions=100)
    rng = np.random.default_rng(0)
    base = list(rng.normal(400, 80, 300))
    assert not guardrails.length_shift(base, list(rng.normal(420, 80, 300)), policy).tripped  # +5%
    longer = guardrails.length_shift(base, list(rng.normal(900, 80, 300)), policy)
    assert longer.tripped and longer.value is not None and longer.value > 1.0
    shorter = guardrails.length_shift(base, list(rng.normal(100, 30, 300)), policy)
    assert shorter.tripped and shorter.value is not None and shorter.value < -0.5  # shorter trips too
    assert not guardrails.length_shift(base[:50], list(rng.normal(900, 80, 50)), policy).tripped  # too few
    # two short-or-long mixes a few answers apart: their medians are far apart, their sizes alike
    flip = guardrails.length_shift([10.0] * 153 + [1000.0] * 147, [10.0] * 147 + [1000.0] * 153, policy)
    assert flip.value is not None and flip.value > 50 and not flip.tripped


def test_a_generated_answers_size_is_its_length_and_a_label_has_none() -> None:
    from learnloop.tasks import get_task

    assert get_task("generation").answer_size({"response": "Down the road."}) == 14.0
    assert get_task("classification").answer_size({"label": "pos", "probabilities": {}}) is None


def test_a_challenger_that_refuses_far_more_often_trips_the_answer_category_guardrail() -> None:
    from learnloop.tasks import get_task

    task = get_task("generation")
    policy = Policy.of(guardrail_min_predictions=100)
    answer, refusal = {"response": "The inn is by the well."}, {"response": "I'm sorry, but I can't help with that."}
    baseline = [task.answer_category(a) for a in [answer] * 285 + [refusal] * 15]  # 5% refusals
    challenger = [task.answer_category(a) for a in [answer] * 180 + [refusal] * 120]  # 40% refusals
    assert set(challenger) == {"answer", "refusal"}
    labels = sorted(set(baseline) | set(challenger))  # what the controller compares for a task without labels
    shifted = guardrails.label_shift(baseline, challenger, labels, policy)
    assert shifted.tripped and shifted.value == pytest.approx(0.35)
    alike = [task.answer_category(a) for a in [answer] * 280 + [refusal] * 20]
    assert not guardrails.label_shift(baseline, alike, labels, policy).tripped
