"""Drift of the model's top-class confidence: two-sample KS test, PSI as the effect.

The reference keeps a quantile sketch of its confidences (all of them up to 1,000) and the
shares of ten bins cut at its deciles. The effect is the PSI over those fixed bins, threshold
0.10 by default: the conventional line between "no significant change" (< 0.1) and "moderate
change" (0.1-0.25). 0.25, the conventional "major change", would let a model lose a good part
of its confidence before anyone hears of it; the KS test keeps 0.1 from firing on noise.
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
from learnloop.drift.stats import FloatArray, compare_univariate, univariate_summary

WHAT = "top-class confidence"


def top_confidence(probabilities: FloatArray) -> FloatArray:
    proba = np.asarray(probabilities, dtype=np.float64)
    top: FloatArray = proba.max(axis=1) if proba.shape[0] else np.zeros(0)
    return top


class ConfidenceDriftDetector(Thresholds):
    key = "confidence"
    description = "Top-class confidence: two-sample Kolmogorov-Smirnov test; effect = PSI over reference deciles"
    test = "ks"
    effect = "psi"

    def fit(self, reference: ReferenceData) -> dict[str, Any]:
        values = top_confidence(reference.probabilities)
        return {**summary_header(self.key, values.size), "labels": list(reference.labels), **univariate_summary(values)}

    def check(self, summary: Mapping[str, Any], window: Window, *, features: FeatureMap | None = None) -> DriftResult:
        n_reference = read_summary(summary, self.key)
        check_labels(summary, window)
        early = insufficient(
            self, test=self.test, effect=self.effect, n_reference=n_reference, n_window=len(window), what=WHAT
        )
        if early is not None:
            return early
        d, p_value, psi, detail = compare_univariate(summary, n_reference, top_confidence(window.probabilities))
        return decide(
            self,
            test=self.test,
            statistic=d,
            p_value=p_value,
            effect=self.effect,
            effect_size=psi,
            n_reference=n_reference,
            n_window=len(window),
            what=WHAT,
            detail=detail,
        )
