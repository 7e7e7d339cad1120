"""The generative gate: held-out preference accuracy (McNemar), NLL non-inferiority (paired
bootstrap) and the judge (Wilcoxon), and the rule that combines them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnloop.errors import ValidationError
from learnloop.evaluation.generative_gate import (
    JudgeScores,
    NllScores,
    PreferenceScores,
    compare_generators,
)
from learnloop.evaluation.headline import verdict_headline
from learnloop.policy import Policy

RNG_SEED = 7


def better_pairs(n: int = 40) -> PreferenceScores:
    """The candidate gets most pairs right; the champion about half."""
    rng = np.random.default_rng(RNG_SEED)
    champion = rng.normal(0.0, 1.0, n)
    candidate = np.abs(champion) + rng.uniform(0.1, 1.0, n)
    candidate[:2] = -0.5  # a couple of losses
    return PreferenceScores(list(champion), list(candidate))


def pairs(wins: int, losses: int, both_right: int = 0) -> PreferenceScores:
    """Pairs the candidate alone gets right (wins), the champion alone (losses), and both."""
    champion = [-1.0] * wins + [1.0] * losses + [2.0] * both_right
    candidate = [1.0] * wins + [-1.0] * losses + [2.5] * both_right
    return PreferenceScores(champion, candidate)


def flipped(scores: PreferenceScores) -> PreferenceScores:
    """A candidate trained on flipped pairs: it prefers the rejected response."""
    return PreferenceScores(scores.champion_margins, [-m for m in scores.candidate_margins])


def nll(shift: float = 0.0, n: int = 30) -> NllScores:
    rng = np.random.default_rng(RNG_SEED)
    champion = rng.normal(1.5, 0.2, n)
    candidate = champion + shift + rng.normal(0.0, 0.01, n)
    return NllScores(list(champion), list(candidate), list(rng.integers(5, 200, n)))


def judged(gain: float, n: int = 16, auc: float | None = 0.8) -> JudgeScores:
    rng = np.random.default_rng(RNG_SEED)
    champion = rng.uniform(0.2, 0.6, n)
    return JudgeScores(list(champion), list(champion + gain + rng.normal(0, 0.05, n)), auc, 40, 160)


def by_set(verdict: dict[str, object]) -> dict[str, dict[str, object]]:
    """The comparisons by set, the preference shift (on the held-out pairs too) apart."""
    return {c["set_name"]: c for c in verdict["comparisons"] if c["metric"] != "preference_shift"}  # type: ignore[attr-defined,index]


def shift_of(verdict: dict[str, object]) -> dict[str, object]:
    return next(c for c in verdict["comparisons"] if c["metric"] == "preference_shift")  # type: ignore[attr-defined,index]


def test_a_candidate_better_on_held_out_pairs_passes_with_every_number_stated() -> None:
    verdict = compare_generators(better_pairs(), nll(-0.05), judged(0.0), Policy())
    assert verdict["passed"] and verdict["decision"] == "promote"
    assert verdict["checks"] == {"preference": True, "nll": True, "judge": None}
    pairs = by_set(verdict)["held_out_pairs"]
    assert pairs["n"] == 40 and pairs["candidate_accuracy"] == 38 / 40
    assert pairs["p_better"] < 0.05 and pairs["ci_low"] > 0  # type: ignore[operator]
    assert verdict["reasons"][0].startswith("held-out preference accuracy 0.95 vs ")
    assert "n=40 pairs" in verdict["reasons"][0] and "McNemar exact one-sided p=" in verdict["reasons"][0]
    assert set(by_set(verdict)) == {"held_out_pairs", "held_out_good_answers", "held_out_prompts"}
    assert {"passed", "decision", "reasons", "test", "alpha", "comparisons"} <= set(verdict)


def test_a_candidate_trained_on_flipped_pairs_is_rejected_with_reasons() -> None:
    verdict = compare_generators(flipped(better_pairs()), nll(), None, Policy())
    assert not verdict["passed"] and verdict["decision"] == "reject"
    assert verdict["checks"]["preference"] is False
    assert "NOT shown better" in verdict["reasons"][0]
    assert by_set(verdict)["held_out_pairs"]["p_worse"] < 0.001  # type: ignore[operator]


def test_a_fit_to_good_answers_worse_beyond_the_margin_rejects() -> None:
    verdict = compare_generators(better_pairs(), nll(0.2), None, Policy())
    assert not verdict["passed"] and verdict["checks"]["nll"] is False
    fit = by_set(verdict)["held_out_good_answers"]
    assert fit["difference"] == pytest.approx(0.2, abs=0.01)
    assert fit["ci_high"] > 0.05  # type: ignore[operator]
    assert any("NLL per token" in r and "NOT shown non-inferior" in r for r in verdict["reasons"])
    # within the margin it passes; a wider margin lets the worse fit through
    assert compare_generators(better_pairs(), nll(0.01), None, Policy())["passed"]
    assert compare_generators(better_pairs(), nll(0.2), None, Policy.of(nll_margin=0.5))["passed"]


def test_no_held_out_good_answers_is_reported_and_does_not_block() -> None:
    verdict = compare_generators(better_pairs(), None, None, Policy())
    assert verdict["passed"] and verdict["checks"]["nll"] is None
    assert "not judged (no held-out good answers)" in verdict["reasons"][1]
    empty = NllScores([], [], [])
    assert compare_generators(better_pairs(), empty, None, Policy())["passed"]


def test_the_nll_is_weighted_by_tokens() -> None:
    # a long response the candidate fits better, a one-token response it fits worse
    scores = NllScores([2.0, 1.0], [1.0, 3.0], [99, 1])
    fit = by_set(compare_generators(None, scores, None, Policy(), resamples=10))["held_out_good_answers"]
    assert fit["champion"] == pytest.approx((2.0 * 99 + 1.0) / 100)
    assert fit["candidate"] == pytest.approx((1.0 * 99 + 3.0) / 100)
    assert fit["tokens"] == 100


def test_the_judge_is_reported_and_required_only_when_the_policy_says() -> None:
    worse_judged = judged(-0.1)
    reported = compare_generators(better_pairs(), nll(), worse_judged, Policy())
    assert reported["passed"] and reported["checks"]["judge"] is None
    judge = by_set(reported)["held_out_prompts"]
    assert judge["n"] == 16 and judge["p_worse"] < 0.05 and judge["required"] is False  # type: ignore[operator]
    assert any("Wilcoxon signed-rank" in r and "reported, not required" in r for r in reported["reasons"])
    required = Policy.of(judge_required=True)
    refused = compare_generators(better_pairs(), nll(), worse_judged, required)
    assert not refused["passed"] and refused["checks"]["judge"] is False
    assert compare_generators(better_pairs(), nll(), judged(0.1), required)["passed"]
    missing = compare_generators(better_pairs(), nll(), None, required)
    assert not missing["passed"] and "judge_required is set" in missing["reasons"][-1]


def test_the_judge_says_whether_it_scored_greedy_answers_or_several_samples_per_prompt() -> None:
    greedy = compare_generators(better_pairs(), nll(), judged(0.1), Policy())
    assert any("on n=16 held-out prompts (greedy answers)" in r for r in greedy["reasons"])
    base = judged(0.1)
    sampled = JudgeScores(base.champion, base.candidate, 0.8, 40, 160, samples_per_prompt=4)
    verdict = compare_generators(better_pairs(), nll(), sampled, Policy())
    reason = next(r for r in verdict["reasons"] if r.startswith("judge"))
    assert "n=16 answers to 4 held-out prompts (4 sampled per prompt and version" in reason
    assert by_set(verdict)["held_out_prompts"]["samples_per_prompt"] == 4


def test_without_the_preference_check_required_a_trusted_judge_decides() -> None:
    judge_decides = Policy.of(preference_required=False, judge_required=True)
    verdict = compare_generators(flipped(better_pairs()), nll(), judged(0.1), judge_decides)
    assert verdict["passed"] and verdict["checks"]["preference"] is None and verdict["checks"]["judge"] is True
    assert "preference_required=false: the judge decides" in verdict["reasons"][0]
    assert all(c["required"] is False for c in verdict["comparisons"] if c["set_name"] == "held_out_pairs")
    assert not compare_generators(better_pairs(), nll(), judged(-0.1), judge_decides)["passed"]
    untrusted = compare_generators(better_pairs(), nll(), judged(0.1, auc=0.55), judge_decides)
    assert not untrusted["passed"] and "it cannot decide" in untrusted["reasons"][-1]
    assert not compare_generators(better_pairs(), nll(), None, judge_decides)["passed"]
    assert not compare_generators(better_pairs(), nll(shift=1.0), judged(0.1), judge_decides)["passed"]
    with pytest.raises(ValidationError, match="preference_required"):
        Policy.of(preference_required=False)


def test_too_few_pairs_cannot_pass_the_preference_check() -> None:
    few = pairs(wins=9, losses=0, both_right=3)
    verdict = compare_generators(few, nll(), None, Policy())
    assert not verdict["passed"] and verdict["checks"]["preference"] is False
    assert "20 pairs required (min_preference_pairs)" in verdict["reasons"][0]
    assert compare_generators(few, nll(), None, Policy.of(min_preference_pairs=10))["passed"]


def test_without_enough_pairs_only_a_trusted_judge_showing_it_better_passes() -> None:
    assert not compare_generators(None, None, None, Policy())["passed"]
    passed = compare_generators(None, nll(), judged(0.1), Policy())
    assert passed["passed"] and passed["checks"]["preference_fallback"] is True
    assert not compare_generators(None, nll(), judged(0.0), Policy())["passed"]
    untrusted = compare_generators(None, nll(), judged(0.1, auc=0.55), Policy())
    assert not untrusted["passed"] and "AUC is unknown or below 0.6" in untrusted["reasons"][1]
    assert verdict_headline(untrusted).startswith("rejected: fewer than 20 held-out preference pairs")
    assert not compare_generators(None, nll(), judged(0.1, auc=None), Policy())["passed"]
    # the few pairs there are point the other way: the judge cannot outvote them
    few_worse = pairs(wins=1, losses=2, both_right=3)
    rejected = compare_generators(few_worse, nll(), judged(0.1), Policy())
    assert not rejected["passed"] and "pairs there are point the other way" in rejected["reasons"][1]
    assert compare_generators(pairs(wins=2, losses=1, both_right=3), nll(), judged(0.1), Policy())["passed"]


def test_a_tie_is_not_a_right_answer() -> None:
    verdict = compare_generators(PreferenceScores([1.0, 0.0], [1e-12, 2.0]), None, None, Policy())
    pairs = by_set(verdict)["held_out_pairs"]
    assert pairs["champion_accuracy"] == 0.5 and pairs["candidate_accuracy"] == 0.5
    assert pairs["champion_only"] == 1 and pairs["candidate_only"] == 1


def test_mismatched_or_non_finite_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        PreferenceScores([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        JudgeScores([float("nan")], [0.5])
    with pytest.raises(ValueError, match="at least one token"):
        NllScores([1.0], [1.0], [0])


margins = st.lists(
    st.tuples(st.floats(-50, 50), st.floats(0.001, 50), st.floats(-50, 50), st.floats(0.001, 50)),
    min_size=0,
    max_size=80,
)


@settings(max_examples=60, deadline=None)
@given(rows=margins, judge_gain=st.floats(-1, 1), judge_required=st.booleans(), min_pairs=st.sampled_from([1, 20]))
def test_the_gate_never_passes_a_candidate_worse_than_the_champion_on_every_pair(
    rows: list[tuple[float, float, float, float]], judge_gain: float, judge_required: bool, min_pairs: int
) -> None:
    champion = [m for m, _, _, _ in rows]
    candidate = [m - gap for m, gap, _, _ in rows]  # strictly lower margin on every pair
    nll_rows = NllScores([a for _, _, a, _ in rows], [a for _, _, a, _ in rows], [1 + int(b) for *_, b in rows])
    judge = judged(judge_gain, n=max(len(rows), 1))
    policy = Policy.of(min_preference_pairs=min_pairs, judge_required=judge_required)
    verdict = compare_generators(PreferenceScores(champion, candidate), nll_rows, judge, policy, resamples=50)
    assert verdict["checks"]["preference"] in (False, None)
    if rows:
        assert not verdict["passed"]


def test_the_per_token_margin_is_reported_beside_the_summed_one_and_decides_nothing() -> None:
    """People prefer the longer answer: summed over its tokens, its log-probability is lower,
    so both versions get every summed margin wrong; per token, the candidate gets them right."""
    summed = [-20.0] * 30
    scores = PreferenceScores(summed, summed, [-0.2] * 30, [0.3] * 28 + [-0.1] * 2)
    verdict = compare_generators(scores, None, None, Policy())
    held = by_set(verdict)["held_out_pairs"]
    assert verdict["decision"] == "reject"  # the summed margins decide: no pair right either way
    assert held["per_token"]["candidate"] == pytest.approx(28 / 30) and held["per_token"]["champion"] == 0.0
    assert held["per_token"]["candidate_only"] == 28 and held["per_token"]["p_better"] < 1e-6
    reason = next(r for r in verdict["reasons"] if r.startswith("held-out preference accuracy"))
    assert "per token (length-normalised, reported, not judged): 0.93 vs 0.00, 28 wins vs 0 losses" in reason
    # without per-token margins nothing is reported
    plain = by_set(compare_generators(PreferenceScores(summed, summed), None, None, Policy()))
    assert plain["held_out_pairs"]["per_token"] is None
    with pytest.raises(ValueError, match="per token"):
        PreferenceScores(summed, summed, [0.1], [0.2])


def test_a_policy_can_judge_the_per_token_margin_and_report_the_summed_one() -> None:
    summed = [-20.0] * 30
    scores = PreferenceScores(summed, summed, [-0.2] * 30, [0.3] * 28 + [-0.1] * 2)
    verdict = compare_generators(scores, None, None, Policy.of(preference_margin="per-token"))
    held = by_set(verdict)["held_out_pairs"]
    assert verdict["decision"] == "promote", verdict["reasons"]
    assert held["margin"] == "per-token" and held["candidate_accuracy"] == pytest.approx(28 / 30)
    assert held["summed"]["candidate"] == 0.0 and held["summed"]["champion"] == 0.0
    reason = next(r for r in verdict["reasons"] if r.startswith("held-out preference accuracy"))
    assert reason.startswith("held-out preference accuracy per token 0.93 vs 0.00")
    assert "summed over the tokens, reported, not judged: 0.00 vs 0.00" in reason
    # no per-token margins scored: the summed ones are judged whatever the policy says
    per_token = Policy.of(preference_margin="per-token")
    plain = by_set(compare_generators(PreferenceScores(summed, summed), None, None, per_token))
    assert plain["held_out_pairs"]["margin"] == "summed"


def moved_not_flipped(toward: int, away: int) -> PreferenceScores:
    """Pairs far from a tie: the candidate moves ``toward`` margins toward the chosen answer and
    ``away`` the other way, and ranks every pair as the champion does."""
    champion = [-5.0] * 20 + [5.0] * (toward + away - 20)
    candidate = [m + (0.5 if i < toward else -0.5) for i, m in enumerate(champion)]
    return PreferenceScores(champion, candidate)


def test_the_preference_shift_is_reported_beside_the_accuracy_and_decides_only_when_asked() -> None:
    scores = moved_not_flipped(30, 10)
    verdict = compare_generators(scores, None, None, Policy())
    assert verdict["decision"] == "reject"  # accuracy decides: no pair changed sides
    shift = shift_of(verdict)
    assert (shift["toward"], shift["away"], shift["n"]) == (30, 10, 40)
    assert shift["candidate"] == pytest.approx(0.75) and shift["p_better"] == pytest.approx(0.00111, abs=1e-5)
    assert shift["required"] is False and shift["passed"] is True and shift["ci_low"] > 0.5  # type: ignore[operator]
    assert "shift, reported, not judged: 30 toward vs 10 away, sign test p=0.0011" in verdict["reasons"][0]

    judged_by_shift = compare_generators(scores, None, None, Policy.of(preference_test="shift"))
    assert judged_by_shift["decision"] == "promote", judged_by_shift["reasons"]
    reason = judged_by_shift["reasons"][0]
    assert reason.startswith("held-out preference shift: the candidate moved 30 of 40 pairs' margins toward")
    assert "accuracy, reported, not judged (preference_test=shift): 0.50 vs 0.50, 0 wins vs 0 losses" in reason
    assert by_set(judged_by_shift)["held_out_pairs"]["required"] is False


def test_judged_by_shift_a_candidate_moving_margins_the_wrong_way_or_too_few_is_rejected() -> None:
    policy = Policy.of(preference_test="shift")
    assert compare_generators(moved_not_flipped(10, 30), None, None, policy)["decision"] == "reject"
    assert compare_generators(flipped(better_pairs()), None, None, policy)["decision"] == "reject"
    even = compare_generators(moved_not_flipped(22, 18), None, None, policy)
    assert even["decision"] == "reject" and shift_of(even)["p_better"] > 0.05  # type: ignore[operator]
    few = compare_generators(PreferenceScores([-5.0] * 19, [-4.5] * 19), None, None, policy)  # 20 required
    assert few["decision"] == "reject" and shift_of(few)["toward"] == 19
