"""Expected calibration error (ECE) of the top-class confidence.

Each example's confidence is its highest probability, and it is a hit when that column (the
first, on a tie) is its true label. Confidences fall into ``bins`` equal-width bins over
[0, 1] (bin ``b`` holds ``b/bins <= c < (b+1)/bins``; the last also holds 1.0) and

    ECE = sum over bins of (n_b / n) * |accuracy_b - mean confidence_b|
        = (1 / n) * sum over bins of |sum over the bin's examples of (hit - confidence)|

so 0 means that, bin by bin, the model is right as often as it claims to be.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from learnloop.evaluation.bootstrap import FloatArray, Statistic

ECE_BINS = 15


def _bin_gaps(truth: npt.NDArray[np.intp], proba: FloatArray, bins: int) -> npt.NDArray[np.float64]:
    """A ``(n, bins)`` matrix: each example's ``hit - confidence`` in the column of its bin."""
    top = proba.argmax(axis=1)
    confidence = proba[np.arange(len(top)), top]
    gap = (top == truth).astype(np.float64) - confidence
    column = np.minimum((confidence * bins).astype(np.intp), bins - 1)
    out = np.zeros((len(top), bins))
    out[np.arange(len(top)), column] = gap
    return out


def expected_calibration_error(truth: npt.NDArray[np.intp], proba: FloatArray, bins: int = ECE_BINS) -> float:
    """ECE of ``proba`` (one row per example) against ``truth`` (column index of each label)."""
    if len(truth) == 0:
        return 0.0
    return float(np.abs(_bin_gaps(truth, proba, bins).sum(axis=0)).sum() / len(truth))


def ece_statistic(truth: npt.NDArray[np.intp], proba: FloatArray, bins: int = ECE_BINS) -> Statistic:
    """``expected_calibration_error`` under example weights (see ``bootstrap``)."""
    gaps = _bin_gaps(truth, proba, bins)

    def ece(weights: FloatArray) -> FloatArray:
        return np.asarray(np.abs(weights @ gaps).sum(axis=1) / weights.sum(axis=1), dtype=np.float64)

    return ece
