"""Drift of the predicted-label mix: chi-squared test of homogeneity, total variation as the effect.

The effect size is the total variation distance between the reference's and the window's
predicted-label shares (half the L1 distance: the share of predictions that would have to change
label), threshold 0.10 by default: a binary model whose positive rate moves from 50% to 60%.
Cramér's V of the 2 x k table is in the detail, not the decision, because it shrinks as the
window outgrows the reference for the same shift. PSI over labels is in the detail too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from learnloop.drift.base import (
    DriftResult,
    FeatureMap,
    ReferenceData,
    Thresholds,
    Window,
    check_labels,
    decide,
    insufficient,
    read_summary,
    summary_header,
)
from learnloop.drift.stats import FloatArray, chi2_homogeneity, cramers_v, psi_terms, total_variation

WHAT = "predicted-label mix"


def label_counts(probabilities: FloatArray, k: int) -> list[int]:
    """How often each column is the top one (ties go to the first column)."""
    proba = np.asarray(probabilities, dtype=np.float64)
    if proba.shape[0] == 0:
        return [0] * k
    return [int(c) for c in np.bincount(proba.argmax(axis=1), minlength=k)]


class PredictionDriftDetector(Thresholds):
    key = "prediction"
    description = "Predicted-label mix: chi-squared test of homogeneity; effect = total variation distance"
    test = "chi-squared"
    effect = "total_variation"

    def fit(self, reference: ReferenceData) -> dict[str, Any]:
        counts = label_counts(reference.probabilities, len(reference.labels))
        return {**summary_header(self.key, len(reference.texts)), "labels": list(reference.labels), "counts": counts}

    def check(self, summary: Mapping[str, Any], window: Window, *, features: FeatureMap | None = None) -> DriftResult:
        n_reference = read_summary(summary, self.key)
        check_labels(summary, window)
        n_window = len(window)
        early = insufficient(
            self, test=self.test, effect=self.effect, n_reference=n_reference, n_window=n_window, what=WHAT
        )
        if early is not None:
            return early
        reference_counts = [int(c) for c in summary["counts"]]
        window_counts = label_counts(window.probabilities, len(window.labels))
        chi2, p_value, dof = chi2_homogeneity(reference_counts, window_counts)
        reference_share = np.asarray(reference_counts, dtype=np.float64) / n_reference
        window_share = np.asarray(window_counts, dtype=np.float64) / n_window
        terms = psi_terms(reference_share, window_share)
        columns = sum(1 for r, w in zip(reference_counts, window_counts, strict=True) if r + w > 0)
        detail = {
            "labels": list(window.labels),
            "reference_counts": reference_counts,
            "window_counts": window_counts,
            "reference_share": reference_share.tolist(),
            "window_share": window_share.tolist(),
            "dof": dof,
            "cramers_v": cramers_v(chi2, n_reference + n_window, 2, columns),
            "psi": float(terms.sum()),
            "psi_per_label": terms.tolist(),
            "unseen_in_reference": [
                lab
                for lab, r, w in zip(window.labels, reference_counts, window_counts, strict=True)
                if r == 0 and w > 0
            ],
        }
        return decide(
            self,
            test=self.test,
            statistic=chi2,
            p_value=p_value,
            effect=self.effect,
            effect_size=total_variation(reference_share, window_share),
            n_reference=n_reference,
            n_window=n_window,
            what=WHAT,
            detail=detail,
        )
