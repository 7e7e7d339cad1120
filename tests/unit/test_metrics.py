"""Classification metrics against scikit-learn, hand-computed calibration, the bootstrap."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, f1_score, log_loss, roc_auc_score

from learnloop.evaluation import (
    bootstrap_ci,
    classification_metrics,
    expected_calibration_error,
    latency_percentiles,
    macro_f1_statistic,
    mean_statistic,
    paired_bootstrap_diff_cis,
)
from learnloop.evaluation.auc import roc_auc_statistic
from learnloop.evaluation.bootstrap import ratio_statistic
from learnloop.evaluation.calibration import ece_statistic

ORIGINAL_KEYS = {"n", "accuracy", "accuracy_ci95", "macro_f1", "per_class", "confusion_matrix"}
PROBA_KEYS = {"roc_auc", "log_loss", "ece", "brier"}
CI_KEYS = {"macro_f1_ci95", "roc_auc_ci95", "log_loss_ci95", "ece_ci95", "brier_ci95"}


def synthetic(n: int, k: int, seed: int, signal: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """True class indices and softmax probabilities that favour the true class."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), truth] += signal
    proba = np.exp(logits)
    return truth, proba / proba.sum(axis=1, keepdims=True)


def as_labels(indices: np.ndarray, labels: list[str]) -> list[str]:
    return [labels[i] for i in indices]


# -- point estimates against scikit-learn -----------------------------------------------------


def test_binary_metrics_match_scikit_learn_on_random_data() -> None:
    labels = ["neg", "pos"]
    truth, proba = synthetic(500, 2, seed=1)
    y_true, y_pred = as_labels(truth, labels), as_labels(proba.argmax(axis=1), labels)
    m = classification_metrics(y_true, y_pred, labels, proba)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(truth == 1, proba[:, 1]), abs=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss(y_true, proba, labels=labels), abs=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(truth == 1, proba[:, 1]), abs=1e-12)
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"), abs=1e-12)
    assert 0.5 < m["roc_auc"] < 1.0


def test_proba_columns_follow_the_given_label_order_not_the_alphabet() -> None:
    labels = ["pos", "neg"]  # column 0 is "pos"; scikit-learn would read the columns sorted
    y_true = ["pos", "neg", "neg", "pos"]
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    m = classification_metrics(y_true, ["pos", "neg", "neg", "neg"], labels, proba)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.6, 0.3])))
    # P(pos) is 0.9 and 0.3 on the "pos" examples, 0.2 and 0.4 on the "neg" ones: 3 of the 4
    # pairs are ordered right, whichever label counts as positive.
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["brier"] == pytest.approx(np.mean(np.square([0.1, 0.2, 0.4, 0.7])))


def test_multiclass_auc_is_macro_one_vs_rest_and_ignores_column_order() -> None:
    labels = ["a", "b", "c", "d"]
    truth, proba = synthetic(400, 4, seed=2)
    y_true = as_labels(truth, labels)
    expected = roc_auc_score(truth, proba, multi_class="ovr", average="macro", labels=[0, 1, 2, 3])
    m = classification_metrics(y_true, as_labels(proba.argmax(axis=1), labels), labels, proba)
    assert m["roc_auc"] == pytest.approx(expected, abs=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss(y_true, proba, labels=labels), abs=1e-12)
    onehot = np.eye(4)[truth]
    assert m["brier"] == pytest.approx(np.mean(((proba - onehot) ** 2).sum(axis=1)), abs=1e-12)
    permutation = [2, 0, 3, 1]
    shuffled = classification_metrics(
        y_true, as_labels(proba.argmax(axis=1), labels), [labels[i] for i in permutation], proba[:, permutation]
    )
    for key in ("roc_auc", "log_loss", "ece", "brier"):
        assert shuffled[key] == pytest.approx(m[key], abs=1e-12), key


def test_auc_is_none_when_y_true_holds_one_class() -> None:
    labels = ["neg", "pos"]
    proba = np.array([[0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    m = classification_metrics(["pos"] * 3, ["pos", "neg", "pos"], labels, proba, bootstrap=50)
    assert m["roc_auc"] is None and m["roc_auc_ci95"] is None
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.7, 0.4, 0.9])))
    three = classification_metrics(["b", "b"], ["b", "b"], ["a", "b", "c"], np.full((2, 3), 1 / 3))
    assert three["roc_auc"] is None


def test_multiclass_auc_leaves_out_a_class_without_examples() -> None:
    labels = ["a", "b", "c"]
    truth = np.array([0, 0, 1, 1, 0, 1])
    proba = np.array(
        [[0.6, 0.3, 0.1], [0.5, 0.2, 0.3], [0.2, 0.7, 0.1], [0.4, 0.5, 0.1], [0.3, 0.4, 0.3], [0.5, 0.3, 0.2]]
    )
    m = classification_metrics(as_labels(truth, labels), as_labels(proba.argmax(axis=1), labels), labels, proba)
    expected = np.mean([roc_auc_score(truth == c, proba[:, c]) for c in (0, 1)])
    assert m["roc_auc"] == pytest.approx(expected)


def test_log_loss_is_finite_when_the_true_class_gets_probability_zero() -> None:
    m = classification_metrics(["a", "b"], ["a", "a"], ["a", "b"], np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert m["log_loss"] == pytest.approx(-np.log(1e-15) / 2, rel=1e-6)


def test_bad_proba_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        classification_metrics(["a", "b"], ["a", "b"], ["a", "b"], np.ones((2, 3)) / 3)
    with pytest.raises(ValueError, match="outside"):
        classification_metrics(["a", "z"], ["a", "b"], ["a", "b"], np.full((2, 2), 0.5))


def test_keys_without_proba_or_bootstrap_are_the_original_ones() -> None:
    m = classification_metrics(["a", "b", "a"], ["a", "b", "b"], ["a", "b"])
    assert set(m) == ORIGINAL_KEYS
    assert classification_metrics([], [], ["a", "b"], np.zeros((0, 2)), bootstrap=10) == {"n": 0}


# -- expected calibration error ---------------------------------------------------------------


def test_ece_is_zero_when_each_bin_is_right_as_often_as_it_claims() -> None:
    # 10 examples at confidence 0.8 (8 right) and 5 at 0.6 (3 right).
    confidence = np.array([0.8] * 10 + [0.6] * 5)
    hit = np.array([1] * 8 + [0] * 2 + [1] * 3 + [0] * 2, dtype=bool)
    proba = np.column_stack([confidence, 1 - confidence])  # top class is column 0
    truth = np.where(hit, 0, 1)
    assert expected_calibration_error(truth, proba) == pytest.approx(0.0, abs=1e-12)
    # Per example, |hit - confidence| is far from 0: the bins are what make it calibrated.
    assert np.mean(np.abs(hit - confidence)) > 0.3


def test_ece_of_a_known_miscalibrated_model() -> None:
    # 4 examples at 0.9, all wrong (gap 0.9); 4 at 0.6, all right (gap 0.4).
    proba = np.array([[0.9, 0.1]] * 4 + [[0.4, 0.6]] * 4)
    truth = np.array([1] * 4 + [1] * 4)
    assert expected_calibration_error(truth, proba) == pytest.approx((4 * 0.9 + 4 * 0.4) / 8)
    # One bin holding both 0.84 and 0.86: the gaps average inside the bin before |.|.
    proba = np.array([[0.84, 0.16], [0.86, 0.14]])
    assert expected_calibration_error(np.array([0, 1]), proba) == pytest.approx(abs(0.5 - 0.85))


def test_ece_uses_fifteen_equal_width_bins() -> None:
    # 0.70 and 0.72 share bin [0.667, 0.733); 0.70 and 0.74 do not (0.74 is in [0.733, 0.8)).
    same = expected_calibration_error(np.array([0, 1]), np.array([[0.70, 0.30], [0.72, 0.28]]))
    split = expected_calibration_error(np.array([0, 1]), np.array([[0.70, 0.30], [0.74, 0.26]]))
    assert same == pytest.approx(abs(0.5 - 0.71))
    assert split == pytest.approx((0.30 + 0.74) / 2)


# -- weighted statistics agree with the point estimates ---------------------------------------


@pytest.mark.parametrize("k", [2, 3])
def test_weighted_statistics_equal_scikit_learn_with_sample_weight(k: int) -> None:
    truth, proba = synthetic(300, k, seed=3)
    proba = np.round(proba, 2)  # ties in the scores
    proba /= proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    weights = np.random.default_rng(4).integers(0, 4, size=(5, 300)).astype(np.float64)
    auc = roc_auc_statistic(truth, proba)(weights)
    f1 = macro_f1_statistic(truth, pred, k)(weights)
    ece = ece_statistic(truth, proba)(weights)
    for b, w in enumerate(weights):
        if k == 2:
            expected_auc = roc_auc_score(truth == 1, proba[:, 1], sample_weight=w)
        else:
            expected_auc = np.mean([roc_auc_score(truth == c, proba[:, c], sample_weight=w) for c in range(k)])
        assert auc[b] == pytest.approx(expected_auc, abs=1e-12)
        expected_f1 = f1_score(truth, pred, labels=list(range(k)), average="macro", sample_weight=w, zero_division=0)
        assert f1[b] == pytest.approx(expected_f1, abs=1e-12)
        repeated = np.repeat(np.arange(300), w.astype(int))
        assert ece[b] == pytest.approx(expected_calibration_error(truth[repeated], proba[repeated]), abs=1e-12)


def test_macro_f1_statistic_counts_a_label_never_seen_nor_predicted_as_zero() -> None:
    truth, pred = np.array([0, 0, 1]), np.array([0, 1, 1])
    value = macro_f1_statistic(truth, pred, 3)(np.ones((1, 3)))[0]
    assert value == pytest.approx(f1_score(truth, pred, labels=[0, 1, 2], average="macro", zero_division=0))
    assert value == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)


# -- the bootstrap ------------------------------------------------------------------------------


def test_bootstrap_intervals_cover_the_point_estimates_and_are_json() -> None:
    labels = ["neg", "pos"]
    truth, proba = synthetic(800, 2, seed=5)
    m = classification_metrics(
        as_labels(truth, labels), as_labels(proba.argmax(axis=1), labels), labels, proba, bootstrap=500, seed=1
    )
    assert set(m) == ORIGINAL_KEYS | PROBA_KEYS | CI_KEYS | {"bootstrap"}
    for key in ("macro_f1", "roc_auc", "log_loss", "brier"):
        low, high = m[f"{key}_ci95"]
        assert low < m[key] < high, key
        assert high - low < 0.15, key
    assert m["bootstrap"]["resamples"] == 500
    assert json.loads(json.dumps(m, allow_nan=False)) == m


def test_bootstrap_interval_narrows_as_n_grows() -> None:
    rng = np.random.default_rng(6)
    widths = []
    for n in (100, 400, 1600):
        hits = rng.random(n) < 0.8
        ci = bootstrap_ci(mean_statistic(hits), n, resamples=1000, seed=0)
        assert ci is not None
        low, high = ci
        assert low < hits.mean() < high
        widths.append(high - low)
    assert widths[0] > 1.5 * widths[1] > 1.5 * 1.5 * widths[2]
    # A 95% interval of a proportion is about 2 * 1.96 * sqrt(p (1 - p) / n) wide (a 90% one
    # would be 16% narrower).
    p = hits.mean()
    assert widths[2] == pytest.approx(2 * 1.96 * np.sqrt(p * (1 - p) / 1600), rel=0.07)


def test_bootstrap_is_reproducible_from_its_seed() -> None:
    hits = np.random.default_rng(7).random(300) < 0.6
    a = bootstrap_ci(mean_statistic(hits), 300, resamples=200, seed=3)
    assert a == bootstrap_ci(mean_statistic(hits), 300, resamples=200, seed=3)
    assert a != bootstrap_ci(mean_statistic(hits), 300, resamples=200, seed=4)
    assert bootstrap_ci(mean_statistic([]), 0) is None


def test_paired_bootstrap_difference_sees_a_consistent_gain() -> None:
    rng = np.random.default_rng(8)
    a = rng.random(500) < 0.7
    b = a | (rng.random(500) < 0.2)  # b is right wherever a is, and more
    ci = paired_bootstrap_diff_cis({"accuracy": (mean_statistic(a), mean_statistic(b))}, 500, seed=0)["accuracy"]
    assert ci is not None
    assert 0 < ci[0] < b.mean() - a.mean() < ci[1]


def test_a_ratio_statistic_resamples_whole_examples_of_different_sizes() -> None:
    # per-token NLL of three responses of 1, 10 and 100 tokens: total NLL over total tokens
    totals, tokens = np.array([3.0, 10.0, 50.0]), np.array([1.0, 10.0, 100.0])
    ratio = ratio_statistic(totals, tokens)
    assert ratio(np.ones((1, 3)))[0] == pytest.approx(63 / 111)
    weights = np.array([[2.0, 0.0, 1.0], [0.0, 3.0, 0.0]])  # two resamples, as counts
    assert ratio(weights) == pytest.approx([56 / 102, 1.0])


def test_bootstrap_of_1000_resamples_on_2000_examples_is_fast() -> None:
    labels = ["neg", "pos"]
    truth, proba = synthetic(2000, 2, seed=9)
    args = (as_labels(truth, labels), as_labels(proba.argmax(axis=1), labels), labels, proba)
    started = time.perf_counter()
    classification_metrics(*args, bootstrap=1000, seed=0)
    assert time.perf_counter() - started < 5.0  # ~0.3 s on a laptop; generous for loaded CI


# -- latency ----------------------------------------------------------------------------------


def test_latency_percentiles_match_numpy() -> None:
    values = np.random.default_rng(10).lognormal(0.0, 1.0, 333)
    summary = latency_percentiles(values.tolist())
    for q in (50, 90, 95, 99):
        assert summary[f"p{q}"] == pytest.approx(np.percentile(values, q))
    assert summary["max"] == pytest.approx(values.max())
    assert summary["mean"] == pytest.approx(values.mean())
    assert summary["n"] == 333
    assert latency_percentiles([4.0, 1.0, 2.0, 3.0])["p50"] == pytest.approx(2.5)
    assert latency_percentiles([])["n"] == 0 and latency_percentiles([])["p99"] is None


def test_paired_metric_differences_match_scikit_learn_and_pair_the_resamples() -> None:
    from learnloop.evaluation import paired_metric_differences

    rng = np.random.default_rng(3)
    n = 400
    y = rng.integers(0, 2, n)
    truth = [str(v) for v in y]
    weak = np.clip(0.5 + 0.15 * (2 * y - 1) + rng.normal(0, 0.25, n), 0.01, 0.99)
    strong = np.clip(0.5 + 0.3 * (2 * y - 1) + rng.normal(0, 0.25, n), 0.01, 0.99)
    a, b = np.c_[1 - weak, weak], np.c_[1 - strong, strong]
    diffs = paired_metric_differences(truth, a, b, ["0", "1"], resamples=500, seed=1)

    def f1(p: np.ndarray) -> float:
        return float(f1_score(y, p.argmax(axis=1), average="macro"))

    assert diffs["macro_f1"]["difference"] == pytest.approx(f1(b) - f1(a))
    assert diffs["roc_auc"]["difference"] == pytest.approx(roc_auc_score(y, strong) - roc_auc_score(y, weak))
    assert diffs["log_loss"]["difference"] == pytest.approx(log_loss(y, b) - log_loss(y, a))
    assert diffs["brier"]["difference"] == pytest.approx(brier_score_loss(y, strong) - brier_score_loss(y, weak))
    for metric, d in diffs.items():
        assert d["ci"][0] <= d["difference"] <= d["ci"][1], metric
    # The stronger model is better beyond doubt, and the intervals say so.
    assert diffs["roc_auc"]["ci"][0] > 0 and diffs["log_loss"]["ci"][1] < 0
    # Paired: a version against itself differs by exactly nothing on every resample.
    same = paired_metric_differences(truth, a, a, ["0", "1"], resamples=200)
    assert all(d["difference"] == 0 and d["ci"] == [0.0, 0.0] for d in same.values())
