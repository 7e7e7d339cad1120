"""The drift statistics against hand computations and scipy, and their edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.stats.contingency import association
from sklearn.feature_extraction.text import CountVectorizer

from learnloop.drift import DriftResult, PredictionDriftDetector, ReferenceData, Window
from learnloop.drift.base import decide, insufficient
from learnloop.drift.oov import OovDriftDetector, welch_greater
from learnloop.drift.stats import (
    PSI_EPSILON,
    BloomFilter,
    bin_shares,
    chi2_homogeneity,
    cramers_v,
    ks_test,
    psi,
    psi_terms,
    quantile_edges,
    quantile_sketch,
    tokenize,
    total_variation,
)

shares = (
    st.lists(st.floats(0.0, 1.0), min_size=2, max_size=12)
    .filter(lambda xs: sum(xs) > 0)
    .map(lambda xs: np.asarray(xs) / sum(xs))
)


# -- PSI -----------------------------------------------------------------------------------------


def test_psi_matches_a_hand_computation() -> None:
    reference = np.array([0.25, 0.25, 0.5])
    window = np.array([0.5, 0.25, 0.25])
    # (0.5 - 0.25) ln(0.5 / 0.25) + 0 + (0.25 - 0.5) ln(0.25 / 0.5) = 0.5 ln 2
    assert psi(reference, window) == pytest.approx(0.5 * math.log(2), rel=1e-12)
    np.testing.assert_allclose(psi_terms(reference, window), [0.25 * math.log(2), 0.0, 0.25 * math.log(2)])


def test_psi_of_an_empty_bin_uses_the_stated_epsilon() -> None:
    assert PSI_EPSILON == 1e-4
    reference = np.array([0.5, 0.5, 0.0])
    window = np.array([0.4, 0.4, 0.2])
    expected = 2 * (-0.1 * math.log(0.4 / 0.5)) + (0.2 - 1e-4) * math.log(0.2 / 1e-4)
    assert psi(reference, window) == pytest.approx(expected, rel=1e-12)
    assert math.isfinite(psi(window, reference))


@given(shares)
def test_psi_of_a_distribution_with_itself_is_zero(p: np.ndarray) -> None:
    assert psi(p, p) == 0.0


@given(shares, shares)
def test_psi_is_symmetric_and_never_negative(p: np.ndarray, q: np.ndarray) -> None:
    n = min(len(p), len(q))
    p, q = p[:n], q[:n]
    assert psi(p, q) >= 0.0
    assert psi(p, q) == pytest.approx(psi(q, p), rel=1e-9, abs=1e-12)


def test_quantile_bins_split_the_reference_evenly_and_survive_ties() -> None:
    values = np.arange(1000, dtype=np.float64)
    edges = quantile_edges(values, 10)
    assert len(edges) == 9
    np.testing.assert_allclose(bin_shares(values, edges), np.full(10, 0.1))
    tied = np.array([1.0] * 900 + [2.0] * 100)
    tied_edges = quantile_edges(tied, 10)
    assert tied_edges == [1.0]  # duplicate edges dropped, none at the maximum
    np.testing.assert_allclose(bin_shares(tied, tied_edges), [0.9, 0.1])
    np.testing.assert_allclose(bin_shares(np.array([-5.0, 5.0]), tied_edges), [0.5, 0.5])


# -- Kolmogorov-Smirnov --------------------------------------------------------------------------


def test_ks_on_a_whole_stored_reference_is_scipys() -> None:
    rng = np.random.default_rng(0)
    reference, window = rng.normal(size=800), rng.normal(0.1, 1.0, size=3000)
    sketch, exact = quantile_sketch(reference, 1000)
    assert exact and sketch == sorted(reference.tolist())
    expected = stats.ks_2samp(reference, window)
    assert ks_test(sketch, exact, len(reference), window) == (expected.statistic, expected.pvalue)


def test_ks_on_a_quantile_sketch_agrees_with_scipy_on_the_whole_reference() -> None:
    rng = np.random.default_rng(1)
    reference = rng.normal(size=50_000)
    sketch, exact = quantile_sketch(reference, 1000)
    assert not exact and len(sketch) == 1000
    for shift in (0.0, 0.03, 0.2):
        window = rng.normal(shift, 1.0, size=20_000)
        d, p = ks_test(sketch, exact, len(reference), window)
        expected = stats.ks_2samp(reference, window, method="asymp")
        assert abs(d - expected.statistic) <= 1 / 1000
        assert math.log10(max(p, 1e-300)) == pytest.approx(math.log10(max(expected.pvalue, 1e-300)), rel=0.05, abs=0.3)


# -- label counts -----------------------------------------------------------------------------------


def test_chi_squared_and_cramers_v_agree_with_scipy() -> None:
    reference, window = [300, 150, 50], [90, 80, 30]
    table = np.array([reference, window])
    expected = stats.chi2_contingency(table, correction=False)
    chi2, p, dof = chi2_homogeneity(reference, window)
    assert (chi2, p, dof) == pytest.approx((expected.statistic, expected.pvalue, expected.dof), rel=1e-12)
    n = int(table.sum())
    assert cramers_v(chi2, n, 2, 3) == pytest.approx(math.sqrt(chi2 / (n * 1)), rel=1e-12)
    assert cramers_v(chi2, n, 2, 3) == pytest.approx(association(table, method="cramer"), rel=1e-12)


def test_a_label_the_reference_never_predicted_still_counts() -> None:
    chi2, p, dof = chi2_homogeneity([500, 500, 0], [80, 80, 40])
    assert math.isfinite(chi2) and dof == 2 and p < 1e-10
    # a label neither side predicted is left out of the table
    assert chi2_homogeneity([500, 500, 0], [100, 100, 0]) == (0.0, 1.0, 1)
    assert chi2_homogeneity([10, 0], [5, 0]) == (0.0, 1.0, 0)

    detector = PredictionDriftDetector()
    labels = ("a", "b", "c")
    reference_proba = np.tile([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1]], (250, 1))
    summary = detector.fit(ReferenceData(["t"] * 500, reference_proba, labels))
    window_proba = np.vstack([reference_proba[:300], np.tile([[0.1, 0.1, 0.8]], (100, 1))])
    result = detector.check(summary, Window(["t"] * 400, window_proba, labels))
    assert result.detail["unseen_in_reference"] == ["c"]
    assert result.effect_size == pytest.approx(0.25)  # total variation: a quarter moved to "c"
    assert result.drifted and math.isfinite(result.detail["psi"])


def test_total_variation() -> None:
    assert total_variation(np.array([0.5, 0.5]), np.array([0.6, 0.4])) == pytest.approx(0.1)
    assert total_variation(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == 1.0


# -- tokens and vocabulary ---------------------------------------------------------------------


@given(st.text(max_size=200))
@settings(max_examples=200)
def test_tokens_are_the_words_scikit_learn_sees(text: str) -> None:
    assert tokenize(text) == CountVectorizer().build_analyzer()(text)


def test_bloom_filter_finds_every_member_and_few_others() -> None:
    words = [f"word{i}" for i in range(20_000)]
    bloom = BloomFilter.sized_for(len(words), max_log2_bits=19)
    bloom.add_many(words)
    assert bloom.contains_many(words).all()
    others = bloom.contains_many([f"other{i}" for i in range(20_000)]).mean()
    assert others < 0.02 and bloom.false_positive_rate < 0.02
    restored = BloomFilter.from_dict(bloom.to_dict())
    assert restored.contains_many(words).all()
    assert restored.false_positive_rate == bloom.false_positive_rate
    assert bloom.contains_many([]).shape == (0,)


def test_a_vocabulary_built_from_the_reference_gives_an_honest_baseline() -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(5000)]
    zipf = 1.0 / np.arange(1, 5001)

    def texts(n: int) -> list[str]:
        drawn = rng.choice(words, size=(n, 10), p=zipf / zipf.sum()).tolist()
        return [" ".join(row) for row in drawn]

    reference = ReferenceData(texts(2000), np.full((2000, 2), 0.5), ("0", "1"))
    summary = OovDriftDetector().fit(reference)
    assert summary["vocabulary_source"].startswith("reference texts")
    assert summary["mean"] > 0.01  # fresh text from the same source has unknown words too
    result = OovDriftDetector().check(summary, Window(texts(1000), np.full((1000, 2), 0.5), ("0", "1")))
    assert not result.drifted, result.message


def test_welch_without_spread_lets_the_means_decide() -> None:
    assert welch_greater(0.0, 0.0, 100, 0.0, 0.0, 100) == (0.0, 1.0)
    assert welch_greater(0.1, 0.0, 100, 0.0, 0.0, 100) == (math.inf, 0.0)
    t, p = welch_greater(0.2, 0.1, 50, 0.1, 0.1, 60)
    expected = stats.ttest_ind_from_stats(0.2, 0.1, 50, 0.1, 0.1, 60, equal_var=False, alternative="greater")
    assert (t, p) == pytest.approx((expected.statistic, expected.pvalue))


# -- the decision rule -------------------------------------------------------------------------------


def test_drift_needs_both_significance_and_effect() -> None:
    detector = PredictionDriftDetector(alpha=0.05, effect_threshold=0.1)

    def judged(p_value: float, effect_size: float) -> DriftResult:
        return decide(
            detector,
            test="t",
            statistic=1.0,
            p_value=p_value,
            effect="e",
            effect_size=effect_size,
            n_reference=500,
            n_window=500,
            what="x",
            detail={},
        )

    both, small, noisy, edge = judged(0.01, 0.2), judged(1e-9, 0.05), judged(0.2, 0.3), judged(0.049, 0.1)
    assert [r.drifted for r in (both, small, noisy, edge)] == [True, False, False, True]
    assert [r.status for r in (both, small, noisy)] == ["drift", "ok", "ok"]
    assert "significant but small" in small.message and "no drift" in noisy.message


def test_insufficient_data_below_either_minimum() -> None:
    detector = PredictionDriftDetector(min_window=200, min_reference=100)
    kwargs = {"test": "t", "effect": "e", "what": "x"}
    assert insufficient(detector, n_reference=100, n_window=200, **kwargs) is None
    for n_reference, n_window in ((99, 200), (100, 199), (0, 0)):
        result = insufficient(detector, n_reference=n_reference, n_window=n_window, **kwargs)
        assert result is not None and result.status == "insufficient_data" and not result.drifted
