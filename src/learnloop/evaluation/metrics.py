"""Classification metrics of one version on one evaluation set.

``classification_metrics`` returns a JSON-ready dict (stored with each version):

- always: ``n``, ``accuracy``, ``accuracy_ci95`` (Wilson), ``macro_f1``, ``per_class``
  (precision, recall, f1, support per label) and ``confusion_matrix``;
- with ``proba``: ``roc_auc`` (see ``auc``; None with a single class in ``y_true``),
  ``log_loss`` (natural log, probabilities clipped to [1e-15, 1] and rows renormalised),
  ``ece`` (see ``calibration``: 15 bins, top-class confidence) and ``brier`` (mean over
  examples of the squared error summed over classes; halved for two classes, which makes it
  scikit-learn's binary ``brier_score_loss`` of the second label);
- with ``bootstrap=B > 0``: ``macro_f1_ci95`` and, with ``proba``, ``roc_auc_ci95``,
  ``log_loss_ci95``, ``ece_ci95``, ``brier_ci95`` (95% percentile bootstrap over examples,
  all read on the same ``B`` resamples drawn from ``seed``; None where undefined), and
  ``bootstrap`` recording how they were made. ECE is biased upwards on small samples, and so
  are its resamples: its interval can sit above the point estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from learnloop.evaluation.auc import IntArray, roc_auc, roc_auc_statistic
from learnloop.evaluation.bootstrap import (
    FloatArray,
    Statistic,
    bootstrap_cis,
    mean_statistic,
    paired_bootstrap_diff_cis,
)
from learnloop.evaluation.calibration import ece_statistic, expected_calibration_error

LOG_LOSS_EPS = 1e-15
CONFIDENCE = 0.95


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (good coverage at small n)."""
    if n == 0:
        return 0.0, 1.0
    from scipy.special import ndtri  # the standard normal quantile (scipy.stats.norm.ppf)

    z = float(ndtri(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def classification_metrics(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    labels: Sequence[str],
    proba: npt.ArrayLike | None = None,
    *,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics of ``y_pred`` (and of ``proba``: one row per example, columns in ``labels``
    order) against ``y_true``; the keys are listed in the module docstring."""
    n = len(y_true)
    if n == 0:
        return {"n": 0}
    labels = list(labels)
    truth, pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    out = _label_metrics(truth, pred, labels)
    truth_idx = _label_index(truth, labels)
    probs = None if proba is None else _checked_proba(proba, n, labels, truth_idx)
    if probs is not None:
        out.update(_probability_metrics(truth, truth_idx, probs, labels))
    if bootstrap > 0:
        statistics = {"macro_f1": macro_f1_statistic(truth_idx, _label_index(pred, labels), len(labels))}
        if probs is not None:
            statistics.update(_probability_statistics(truth_idx, probs))
        cis = bootstrap_cis(statistics, n, resamples=bootstrap, confidence=CONFIDENCE, seed=seed)
        out.update({f"{name}_ci95": list(ci) if ci is not None else None for name, ci in cis.items()})
        out["bootstrap"] = {"method": "percentile", "resamples": bootstrap, "seed": seed, "confidence": CONFIDENCE}
    return out


def _label_metrics(truth: npt.NDArray[Any], pred: npt.NDArray[Any], labels: list[str]) -> dict[str, Any]:
    n = len(truth)
    correct = int((truth == pred).sum())
    low, high = wilson_interval(correct, n, CONFIDENCE)
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(truth, pred, labels=labels, zero_division=0)
    return {
        "n": n,
        "accuracy": correct / n,
        "accuracy_ci95": [low, high],
        "macro_f1": float(f1_score(truth, pred, labels=labels, average="macro", zero_division=0)),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {
            "labels": labels,
            "matrix": confusion_matrix(truth, pred, labels=labels).tolist(),
        },
    }


def macro_f1_statistic(truth: IntArray, pred: IntArray, k: int) -> Statistic:
    """Macro-F1 over the ``k`` labels under example weights (an F1 with no true and no
    predicted example counts 0, as scikit-learn's ``zero_division=0``); -1 marks a label
    outside the ``k``."""
    classes = np.arange(k)
    is_true, is_pred = truth[:, None] == classes, pred[:, None] == classes
    indicators = np.hstack([is_true & is_pred, is_true, is_pred]).astype(np.float64)

    def macro_f1(weights: FloatArray) -> FloatArray:
        counts = weights @ indicators
        hits, true, predicted = counts[:, :k], counts[:, k : 2 * k], counts[:, 2 * k :]
        denom = true + predicted
        f1 = np.divide(2 * hits, denom, out=np.zeros_like(denom), where=denom > 0)
        return np.asarray(f1.mean(axis=1), dtype=np.float64)

    return macro_f1


def _label_index(values: npt.NDArray[Any], labels: list[str]) -> IntArray:
    index = {label: i for i, label in enumerate(labels)}
    return np.fromiter((index.get(v, -1) for v in values), dtype=np.intp, count=len(values))


def _checked_proba(proba: npt.ArrayLike, n: int, labels: list[str], truth_idx: IntArray) -> FloatArray:
    probs = np.asarray(proba, dtype=np.float64)
    if probs.shape != (n, len(labels)):
        raise ValueError(f"proba has shape {probs.shape}; expected ({n}, {len(labels)}): one column per label")
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError("proba holds negative or non-finite values")
    if (truth_idx < 0).any():
        raise ValueError(f"y_true holds labels outside {labels}")
    return probs


def _clipped(probs: FloatArray) -> FloatArray:
    clipped = np.clip(probs, LOG_LOSS_EPS, 1.0)
    return np.asarray(clipped / clipped.sum(axis=1, keepdims=True), dtype=np.float64)


def _per_example_losses(truth_idx: IntArray, probs: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Each example's log loss (clipped, renormalised probabilities) and Brier score."""
    rows = np.arange(len(truth_idx))
    log_losses = -np.log(_clipped(probs)[rows, truth_idx])
    onehot = np.zeros_like(probs)
    onehot[rows, truth_idx] = 1.0
    brier = ((probs - onehot) ** 2).sum(axis=1) * (0.5 if probs.shape[1] == 2 else 1.0)
    return log_losses, brier


def _probability_metrics(
    truth: npt.NDArray[Any], truth_idx: IntArray, probs: FloatArray, labels: list[str]
) -> dict[str, Any]:
    from sklearn.metrics import log_loss

    # scikit-learn reads probability columns in sorted label order.
    order = sorted(range(len(labels)), key=labels.__getitem__)
    _, brier = _per_example_losses(truth_idx, probs)
    return {
        "roc_auc": roc_auc(truth_idx, probs),
        "log_loss": float(log_loss(truth, _clipped(probs)[:, order], labels=[labels[i] for i in order])),
        "ece": expected_calibration_error(truth_idx, probs),
        "brier": float(brier.mean()),
    }


def _probability_statistics(truth_idx: IntArray, probs: FloatArray) -> dict[str, Statistic]:
    log_losses, brier = _per_example_losses(truth_idx, probs)
    return {
        "roc_auc": roc_auc_statistic(truth_idx, probs),
        "log_loss": mean_statistic(log_losses),
        "ece": ece_statistic(truth_idx, probs),
        "brier": mean_statistic(brier),
    }


def paired_metric_differences(
    y_true: Sequence[str],
    champion_proba: npt.ArrayLike,
    candidate_proba: npt.ArrayLike,
    labels: Sequence[str],
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Candidate minus champion for macro-F1, ROC AUC, log loss, Brier and ECE on the same
    examples, each with a paired percentile-bootstrap interval (both versions read the same
    resamples, so the interval is of the difference, not of two separate estimates). Predicted
    labels are the arg-max of each version's probabilities."""
    label_list = list(labels)
    truth_idx = _label_index(np.asarray(y_true, dtype=object), label_list)
    n, k = len(truth_idx), len(label_list)
    if n == 0:
        return {}
    sides = {
        name: _checked_proba(proba, n, label_list, truth_idx)
        for name, proba in (("champion", champion_proba), ("candidate", candidate_proba))
    }
    statistics = {
        name: {
            "macro_f1": macro_f1_statistic(truth_idx, probs.argmax(axis=1), k),
            **_probability_statistics(truth_idx, probs),
        }
        for name, probs in sides.items()
    }
    observed = np.ones((1, n))
    out: dict[str, dict[str, Any]] = {}
    pairs = {
        metric: (statistics["champion"][metric], statistics["candidate"][metric]) for metric in statistics["champion"]
    }
    for metric, (a, b) in pairs.items():
        champion, candidate = float(a(observed)[0]), float(b(observed)[0])
        out[metric] = {"champion": champion, "candidate": candidate, "difference": candidate - champion}
    intervals = paired_bootstrap_diff_cis(pairs, n, resamples=resamples, confidence=confidence, seed=seed)
    for metric, interval in intervals.items():
        out[metric]["ci"] = None if interval is None else list(interval)
        out[metric]["confidence"] = confidence
    return out
