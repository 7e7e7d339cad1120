"""The offline gate: paired McNemar exact tests, the paired CI, and the verdict."""

from __future__ import annotations

from dataclasses import asdict
from fractions import Fraction
from math import comb

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from conftest import uci_rows
from learnloop.drift.multivariate import domain_classifier_test
from learnloop.evaluation import judge, paired_comparison
from learnloop.evaluation.gate import GoldenDeparture, PairedComparison
from learnloop.policy import Policy


def outcomes(both_right: int, champion_only: int, candidate_only: int, both_wrong: int) -> tuple[list[str], ...]:
    """(truth, champion predictions, candidate predictions) with the given 2x2 cell counts."""
    truth: list[str] = []
    champion: list[str] = []
    candidate: list[str] = []
    for n, champ_right, cand_right in (
        (both_right, True, True),
        (champion_only, True, False),
        (candidate_only, False, True),
        (both_wrong, False, False),
    ):
        truth += ["pos"] * n
        champion += ["pos" if champ_right else "neg"] * n
        candidate += ["pos" if cand_right else "neg"] * n
    return truth, champion, candidate


def compare(both_right: int, champion_only: int, candidate_only: int, both_wrong: int, **kw: float) -> PairedComparison:
    return paired_comparison("set", *outcomes(both_right, champion_only, candidate_only, both_wrong), **kw)


def upper_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2), exactly."""
    return float(Fraction(sum(comb(n, i) for i in range(k, n + 1)), 2**n))


cells = st.integers(min_value=0, max_value=60)


@settings(max_examples=200, deadline=None)
@given(both_right=cells, champion_only=cells, candidate_only=cells, both_wrong=cells)
def test_one_sided_p_values_are_exact_mcnemar(
    both_right: int, champion_only: int, candidate_only: int, both_wrong: int
) -> None:
    c = compare(both_right, champion_only, candidate_only, both_wrong)
    assert (c.champion_only, c.candidate_only) == (champion_only, candidate_only)
    discordant = champion_only + candidate_only
    if discordant == 0:
        assert c.p_better == c.p_worse == 1.0
        return
    assert c.p_better == pytest.approx(upper_tail(candidate_only, discordant), rel=1e-9, abs=1e-15)
    assert c.p_worse == pytest.approx(upper_tail(champion_only, discordant), rel=1e-9, abs=1e-15)
    if champion_only != candidate_only:
        # The smaller one-sided p-value is half the two-sided exact McNemar p-value.
        two_sided = binomtest(candidate_only, discordant, 0.5, alternative="two-sided").pvalue
        assert min(c.p_better, c.p_worse) == pytest.approx(two_sided / 2, rel=1e-9, abs=1e-15)


@settings(max_examples=200, deadline=None)
@given(both_right=cells, champion_only=cells, candidate_only=cells, both_wrong=cells)
def test_accuracies_difference_and_interval_agree(
    both_right: int, champion_only: int, candidate_only: int, both_wrong: int
) -> None:
    n = both_right + champion_only + candidate_only + both_wrong
    c = compare(both_right, champion_only, candidate_only, both_wrong, confidence=0.9)
    assert c.n == n
    if n == 0:
        assert (c.ci_low, c.ci_high) == (-1.0, 1.0)
        return
    assert c.champion_accuracy == pytest.approx((both_right + champion_only) / n)
    assert c.candidate_accuracy == pytest.approx((both_right + candidate_only) / n)
    assert c.difference == pytest.approx(c.candidate_accuracy - c.champion_accuracy)
    assert -1.0 <= c.ci_low <= c.ci_high <= 1.0
    wider = compare(both_right, champion_only, candidate_only, both_wrong, confidence=0.99)
    assert wider.ci_low <= c.ci_low and c.ci_high <= wider.ci_high


def test_interval_matches_the_agresti_min_formula_by_hand() -> None:
    # n=100, champion-only 5, candidate-only 15; half a count added to each cell, n+2.
    c = compare(70, 5, 15, 10, confidence=0.9)
    diff = (15.5 - 5.5) / 102
    var = ((21 / 102) - diff**2) / 102
    z = 1.6448536269514722
    assert c.ci_low == pytest.approx(diff - z * var**0.5, rel=1e-9)
    assert c.ci_high == pytest.approx(diff + z * var**0.5, rel=1e-9)


policies = st.builds(
    Policy.of,
    golden_margin=st.floats(min_value=0.0, max_value=0.99),
    alpha=st.floats(min_value=0.001, max_value=0.999),
    min_recent_gain=st.floats(min_value=-0.99, max_value=0.99),
    min_recent_examples=st.integers(min_value=1, max_value=50),
    recent_test=st.sampled_from(["refresh", "superiority", "not-worse"]),
)


@settings(max_examples=300, deadline=None)
@given(
    policy=policies,
    golden=st.tuples(cells, st.integers(min_value=1, max_value=60), cells),
    recent=st.tuples(cells, st.integers(min_value=1, max_value=60), cells),
    refresh=st.booleans(),
)
def test_a_candidate_worse_on_every_disagreement_fails_superiority_and_not_worse_once_shown(
    policy: Policy, golden: tuple[int, int, int], recent: tuple[int, int, int], refresh: bool
) -> None:
    # Wherever the two disagree, the champion is right: the candidate never wins a pair. A test
    # of superiority never passes it; a test of "not worse" (a refresh) may, until the losses
    # are enough to show it worse at alpha.
    g_right, g_lost, g_wrong = golden
    r_right, r_lost, r_wrong = recent
    recent_cmp = compare(r_right, r_lost, 0, r_wrong)
    verdict = judge(compare(g_right, g_lost, 0, g_wrong), recent_cmp, policy, refresh=refresh)
    if verdict.recent_test == "superiority":
        assert verdict.passed is False
        assert verdict.to_dict()["decision"] == "reject"
    elif recent_cmp.p_worse < policy.gate.alpha or recent_cmp.n < policy.gate.min_recent_examples:
        assert verdict.passed is False


def test_gate_passes_a_clearly_better_candidate() -> None:
    golden = compare(160, 3, 5, 32)
    recent = compare(140, 3, 30, 27)
    verdict = judge(golden, recent, Policy())
    assert verdict.passed is True
    assert verdict.to_dict()["decision"] == "promote"
    assert "non-inferior" in verdict.reasons[0]
    assert "McNemar" in verdict.reasons[1] and "better" in verdict.reasons[1]
    assert [c["set_name"] for c in verdict.comparisons] == ["set", "set"]


def test_gate_rejects_a_candidate_worse_on_golden_beyond_the_margin() -> None:
    golden = compare(150, 25, 0, 25)  # 12.5 points worse
    recent = compare(140, 3, 30, 27)
    verdict = judge(golden, recent, Policy.of(golden_margin=0.05))
    assert verdict.passed is False
    assert "NOT shown non-inferior" in verdict.reasons[0]


def test_gate_rejects_when_the_recent_holdout_is_too_small() -> None:
    verdict = judge(compare(160, 0, 0, 40), compare(5, 0, 20, 0), Policy.of(min_recent_examples=30))
    assert verdict.passed is False
    assert "30 required" in verdict.reasons[1]
    assert judge(compare(160, 0, 0, 40), None, Policy()).passed is False


def test_gate_rejects_a_gain_that_is_not_significant() -> None:
    recent = compare(90, 4, 7, 9)  # +3 points, p ~ 0.27
    verdict = judge(compare(160, 0, 0, 40), recent, Policy.of(alpha=0.05))
    assert recent.p_better > 0.05
    assert verdict.passed is False
    assert "NOT shown better" in verdict.reasons[1]


def test_a_refresh_must_not_be_shown_worse_and_any_other_change_shown_better() -> None:
    golden = compare(160, 0, 0, 40)
    recent = compare(90, 6, 4, 10)  # -1.8 points on 110, p(worse) ~ 0.38: not shown worse
    assert recent.p_worse > 0.05
    refresh = judge(golden, recent, Policy(), refresh=True)
    assert refresh.passed is True and refresh.recent_test == "not-worse"
    assert "p(worse)=0.3770 vs alpha 0.05: not shown worse" in refresh.reasons[1]
    other = judge(golden, recent, Policy(), refresh=False)  # another family or other parameters
    assert other.passed is False and other.recent_test == "superiority"
    assert "NOT shown better" in other.reasons[1]
    always = judge(golden, recent, Policy.of(recent_test="superiority"), refresh=True)
    assert always.passed is False and always.recent_test == "superiority"
    assert judge(golden, recent, Policy.of(recent_test="not-worse"), refresh=False).passed is True


def test_a_refresh_shown_worse_or_short_of_a_required_gain_is_rejected() -> None:
    golden = compare(160, 0, 0, 40)
    worse = compare(180, 14, 4, 22)  # -4.5 points on 220, p(worse) ~ 0.015
    verdict = judge(golden, worse, Policy(), refresh=True)
    assert verdict.passed is False and "shown WORSE" in verdict.reasons[1]
    assert verdict.headline.startswith("rejected: recent feedback shown WORSE (-4.5 pts, McNemar p(worse)=0.015")
    assert judge(golden, worse, Policy.of(alpha=0.01), refresh=True).passed is True  # not shown at 1%
    ahead = compare(190, 4, 9, 17)  # +2.3 points
    assert judge(golden, ahead, Policy.of(min_recent_gain=0.02), refresh=True).passed is True
    short = judge(golden, ahead, Policy.of(min_recent_gain=0.05), refresh=True)
    assert short.passed is False and "NOT +5.0 pts ahead" in short.reasons[1]
    # a refresh still carries the golden set's burden of proof
    assert judge(compare(150, 25, 0, 25), ahead, Policy(), refresh=True).passed is False


def departure(auc: float, p_value: float) -> GoldenDeparture:
    return GoldenDeparture(auc=auc, p_value=p_value, n_golden=100, n_recent=40, alpha=0.05)


def test_a_refresh_answers_to_the_golden_set_only_while_the_traffic_is_its_distribution() -> None:
    forgets = compare(150, 25, 0, 25)  # 12.5 points worse on the golden set
    ahead = compare(190, 4, 9, 17)  # level or better on the recent feedback
    bad_f1 = secondary(macro_f1=(-0.20, -0.10))  # shown beyond its margin
    left = departure(0.93, 1e-9)
    verdict = judge(forgets, ahead, Policy(), golden_secondary=bad_f1, refresh=True, departure=left)
    assert verdict.passed is True
    assert "NOT shown non-inferior (reported, not required: the traffic has left the golden set)" in verdict.reasons[0]
    assert "AUC 0.93 on 100 golden and 40 recent texts" in verdict.reasons[1]
    assert "the traffic has LEFT the golden set's distribution" in verdict.reasons[1]
    assert verdict.golden_departure == {**asdict(left), "departed": True}
    # still shown worse on the recent feedback: rejected for that
    worse = compare(180, 14, 4, 22)
    assert judge(forgets, worse, Policy(), refresh=True, departure=left).passed is False
    # another family or other parameters keep the golden set's burden of proof
    assert judge(forgets, ahead, Policy(), refresh=False, departure=left).passed is False
    # not shown to have left it: not significant, or significant but too small an effect
    for stays in (departure(0.93, 0.2), departure(0.58, 1e-6)):
        kept = judge(forgets, ahead, Policy(), refresh=True, departure=stays)
        assert kept.passed is False and "not shown to have left" in kept.reasons[1]
        assert kept.golden_departure is not None and kept.golden_departure["departed"] is False


def test_the_domain_classifier_tells_another_domain_from_the_golden_set_and_not_the_same_one() -> None:
    yelp, imdb = [t for t, _ in uci_rows("yelp")], [t for t, _ in uci_rows("imdb")]
    other = domain_classifier_test(yelp[:200], imdb[:80], seed=0)
    assert other.auc > 0.75 and other.p_value < 1e-4
    assert (other.scored_reference, other.scored_window) == (100, 40)
    same = domain_classifier_test(yelp[:200], yelp[500:580], seed=0)
    assert same.p_value > 0.05, same


def test_gate_requires_the_minimum_recent_gain() -> None:
    recent = compare(140, 3, 30, 27)  # +13.5 points, highly significant
    assert judge(compare(160, 0, 0, 40), recent, Policy.of(min_recent_gain=0.10)).passed is True
    assert judge(compare(160, 0, 0, 40), recent, Policy.of(min_recent_gain=0.20)).passed is False


def secondary(**diffs: tuple[float, float]) -> dict[str, dict[str, object]]:
    """Paired-bootstrap results as the pipeline stores them: metric -> difference and interval."""
    return {m: {"difference": (lo + hi) / 2, "ci": [lo, hi]} for m, (lo, hi) in diffs.items()}


def test_golden_macro_f1_auc_and_calibration_must_be_non_inferior() -> None:
    golden, recent = compare(160, 3, 5, 32), compare(140, 3, 30, 27)
    fine = secondary(macro_f1=(-0.02, 0.03), roc_auc=(-0.01, 0.02), ece=(-0.03, 0.02))
    verdict = judge(golden, recent, Policy(), golden_secondary=fine)
    assert verdict.passed and "macro-F1" in verdict.reasons[2] and "NOT" not in verdict.reasons[2]
    for metric, interval in (("macro_f1", (-0.09, 0.0)), ("roc_auc", (-0.07, -0.01)), ("ece", (0.0, 0.08))):
        worse = {**fine, **secondary(**{metric: interval})}
        verdict = judge(golden, recent, Policy(), golden_secondary=worse)
        assert not verdict.passed, metric
        assert "NOT within the margin" in verdict.reasons[2]
    # A margin of 1 turns a check off.
    bad_f1 = {**fine, **secondary(macro_f1=(-0.09, 0.0))}
    assert judge(golden, recent, Policy.of(golden_f1_margin=1.0), golden_secondary=bad_f1).passed


def test_a_refresh_fails_a_golden_metric_only_when_shown_beyond_its_margin() -> None:
    golden, recent = compare(160, 3, 5, 32), compare(140, 3, 30, 27)
    fine = secondary(macro_f1=(-0.02, 0.03), roc_auc=(-0.01, 0.02), ece=(-0.03, 0.02))
    for metric, unsure, shown in (
        ("macro_f1", (-0.09, 0.0), (-0.12, -0.06)),
        ("roc_auc", (-0.07, -0.01), (-0.09, -0.051)),
        ("ece", (0.0, 0.08), (0.051, 0.09)),
    ):
        unproven = {**fine, **secondary(**{metric: unsure})}
        assert not judge(golden, recent, Policy(), golden_secondary=unproven).passed, metric
        refresh = judge(golden, recent, Policy(), golden_secondary=unproven, refresh=True)
        assert refresh.passed, metric
        assert "not shown beyond the margin" in refresh.reasons[2]
        beyond = judge(
            golden, recent, Policy(), golden_secondary={**fine, **secondary(**{metric: shown})}, refresh=True
        )
        assert not beyond.passed, metric
        assert "shown BEYOND the margin 0.05" in beyond.reasons[2]


def test_a_slice_shown_worse_beyond_the_margin_fails_the_gate_and_small_slices_are_not_judged() -> None:
    golden, recent = compare(160, 3, 5, 32), compare(140, 3, 30, 27)
    policy = Policy.of(slice_margin=0.05, min_slice_examples=50)
    regressed = paired_comparison("recent[domain=books]", *outcomes(60, 20, 2, 18))  # -18 pts, p tiny
    tiny = paired_comparison("recent[domain=toys]", *outcomes(5, 4, 0, 1))  # -40 pts of 10
    mild = paired_comparison("recent[domain=dvd]", *outcomes(80, 5, 3, 12))  # -2 pts
    verdict = judge(golden, recent, policy, slices=[tiny, mild])
    assert verdict.passed
    assert any("toys" in r and "too small" in r for r in verdict.reasons)
    assert any("dvd" in r and "no regression shown" in r for r in verdict.reasons)
    verdict = judge(golden, recent, policy, slices=[regressed, mild])
    assert not verdict.passed and any("books" in r and "REGRESSES" in r for r in verdict.reasons)
    assert [c["set_name"] for c in verdict.comparisons][2:] == ["recent[domain=books]", "recent[domain=dvd]"]


def test_slices_group_recent_examples_by_each_metadata_field() -> None:
    from learnloop.evaluation.gate import slice_comparisons

    metadata = [{"domain": "a", "lang": "en"}, {"domain": "b"}, None, {"domain": "a", "lang": "de"}]
    truth, champ, cand = ["x"] * 4, ["x", "y", "x", "x"], ["y", "x", "x", "x"]
    slices = slice_comparisons(metadata, truth, champ, cand, ["domain", "lang"], confidence=0.9)
    by_name = {c.set_name: (c.n, c.champion_only, c.candidate_only) for c in slices}
    assert by_name == {
        "recent[domain=a]": (2, 1, 0),
        "recent[domain=b]": (1, 0, 1),
        "recent[lang=de]": (1, 0, 0),
        "recent[lang=en]": (1, 1, 0),
    }
