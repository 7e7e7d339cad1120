"""ROC AUC of predicted probabilities: the point estimate and its bootstrap statistic.

``truth`` holds each example's label as a column index of ``proba`` (columns in the model's
label order). Binary: the AUC of the second column's label as the positive class (with rows
that sum to one the first column gives the same value). Multi-class: the unweighted mean of
the one-vs-rest AUCs of the classes present in ``truth`` (scikit-learn's ``multi_class="ovr",
average="macro"`` when every class is present; a class with no examples has no AUC and is
left out). None when ``truth`` holds a single class.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from learnloop.evaluation.bootstrap import FloatArray, Statistic

IntArray = npt.NDArray[np.intp]


def _scored_classes(truth: IntArray, k: int) -> list[int]:
    present = [c for c in range(k) if (truth == c).any()]
    if len(present) < 2:
        return []
    return [1] if k == 2 else present


def roc_auc(truth: IntArray, proba: FloatArray) -> float | None:
    classes = _scored_classes(truth, proba.shape[1])
    if not classes:
        return None
    from sklearn.metrics import roc_auc_score

    return float(np.mean([roc_auc_score(truth == c, proba[:, c]) for c in classes]))


def _weighted_auc_statistic(scores: FloatArray, positive: npt.NDArray[np.bool_]) -> Statistic:
    """AUC as the Mann-Whitney count under example weights: the weight of (positive, negative)
    pairs that the scores order correctly, ties counting half, over the weight of all pairs."""
    order = np.argsort(scores, kind="stable")
    ranked, ranked_positive = scores[order], positive[order]
    new_group = np.r_[True, ranked[1:] != ranked[:-1]]
    starts = np.flatnonzero(new_group)  # sorted position where each tie group begins
    ends = np.r_[starts[1:], len(ranked)]
    group = np.cumsum(new_group)[ranked_positive] - 1  # each positive's tie group
    negatives_at = np.flatnonzero(~ranked_positive)
    # How many negatives (in score order) rank below each positive, and below or tied with it.
    below = np.searchsorted(negatives_at, starts[group])
    below_or_tied = np.searchsorted(negatives_at, ends[group])
    positive_cols, negative_cols = order[ranked_positive], order[~ranked_positive]

    def auc(weights: FloatArray) -> FloatArray:
        cumulative = np.zeros((weights.shape[0], len(negative_cols) + 1))
        np.cumsum(weights[:, negative_cols], axis=1, out=cumulative[:, 1:])
        credit = 0.5 * (cumulative[:, below] + cumulative[:, below_or_tied])  # below + half the ties
        positive_weights = weights[:, positive_cols]
        won = (positive_weights * credit).sum(axis=1)
        pairs = positive_weights.sum(axis=1) * cumulative[:, -1]
        return np.asarray(np.divide(won, pairs, out=np.full(len(won), np.nan), where=pairs > 0), dtype=np.float64)

    return auc


def roc_auc_statistic(truth: IntArray, proba: FloatArray) -> Statistic:
    """``roc_auc`` under example weights; NaN for a resample where it is undefined."""
    per_class = [_weighted_auc_statistic(proba[:, c], truth == c) for c in _scored_classes(truth, proba.shape[1])]

    def macro_auc(weights: FloatArray) -> FloatArray:
        if not per_class:
            return np.full(weights.shape[0], np.nan)
        values = np.stack([statistic(weights) for statistic in per_class], axis=1)
        defined = np.isfinite(values)
        count = defined.sum(axis=1)
        total = np.where(defined, values, 0.0).sum(axis=1)
        return np.asarray(np.divide(total, count, out=np.full(len(total), np.nan), where=count > 0), dtype=np.float64)

    return macro_auc
