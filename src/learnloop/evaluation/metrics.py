"""Classification metrics of one version on one evaluation set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import norm
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (good coverage at small n)."""
    if n == 0:
        return 0.0, 1.0
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    n = len(y_true)
    if n == 0:
        return {"n": 0}
    truth, pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    correct = int((truth == pred).sum())
    low, high = wilson_interval(correct, n)
    precision, recall, f1, support = precision_recall_fscore_support(truth, pred, labels=list(labels), zero_division=0)
    return {
        "n": n,
        "accuracy": correct / n,
        "accuracy_ci95": [low, high],
        "macro_f1": float(f1_score(truth, pred, labels=list(labels), average="macro", zero_division=0)),
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
            "labels": list(labels),
            "matrix": confusion_matrix(truth, pred, labels=list(labels)).tolist(),
        },
    }
