"""The curves behind a version's plots: ROC curves and the reliability (calibration) diagram.

``truth`` holds each example's label as a column index of ``proba`` (columns in the model's
label order), as in ``auc``.

* ``roc_curves``: binary, one curve with the second label as the positive class; multi-class,
  one one-vs-rest curve per label present in ``truth`` (the curves whose mean area is
  ``auc.roc_auc``). Each is scikit-learn's ``roc_curve`` with collinear points dropped.
* ``reliability_bins``: the top-class confidence in ``bins`` equal-width bins (the bins of
  ``calibration``'s ECE); per non-empty bin its count, mean confidence and accuracy with a 95%
  Wilson interval. A calibrated model's bins lie on the diagonal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from learnloop.evaluation.auc import IntArray
from learnloop.evaluation.bootstrap import FloatArray
from learnloop.evaluation.calibration import ECE_BINS
from learnloop.evaluation.metrics import wilson_interval


@dataclass(frozen=True)
class RocCurve:
    label: str  # the positive class
    fpr: list[float]
    tpr: list[float]
    auc: float
    positives: int
    negatives: int


@dataclass(frozen=True)
class ReliabilityBin:
    low: float  # the bin's confidence range [low, high)
    high: float
    n: int
    confidence: float  # mean top-class probability
    accuracy: float  # share of the bin's examples whose top class is right
    ci_low: float
    ci_high: float


def roc_curves(truth: IntArray, proba: FloatArray, labels: Sequence[str]) -> list[RocCurve]:
    """The ROC curve of each scored class (none with a single class in ``truth``)."""
    from sklearn.metrics import auc, roc_curve

    k = proba.shape[1]
    present = [c for c in range(k) if (truth == c).any()]
    if len(present) < 2:
        return []
    out = []
    for c in [1] if k == 2 else present:
        positive = truth == c
        fpr, tpr, _ = roc_curve(positive, proba[:, c], drop_intermediate=True)
        out.append(
            RocCurve(
                label=labels[c],
                fpr=[float(v) for v in fpr],
                tpr=[float(v) for v in tpr],
                auc=float(auc(fpr, tpr)),
                positives=int(positive.sum()),
                negatives=int((~positive).sum()),
            )
        )
    return out


def reliability_bins(truth: IntArray, proba: FloatArray, bins: int = ECE_BINS) -> list[ReliabilityBin]:
    """The non-empty confidence bins, lowest first."""
    if len(truth) == 0:
        return []
    top = proba.argmax(axis=1)
    confidence = proba[np.arange(len(top)), top]
    hit = top == truth
    column = np.minimum((confidence * bins).astype(np.intp), bins - 1)
    out = []
    for b in range(bins):
        inside = column == b
        n = int(inside.sum())
        if n == 0:
            continue
        right = int(hit[inside].sum())
        low, high = wilson_interval(right, n)
        out.append(ReliabilityBin(b / bins, (b + 1) / bins, n, float(confidence[inside].mean()), right / n, low, high))
    return out
