"""Drift of text length in characters: two-sample KS test, PSI as the effect.

Characters rather than words, so the statistic means the same in every script (a Chinese
sentence has no spaces). Same sketch, bins and thresholds as the confidence detector: PSI over
the reference's deciles, drift at 0.10 (the conventional "moderate change").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from learnloop.drift.base import (
    DriftResult,
    FeatureMap,
    ReferenceData,
    Thresholds,
    Window,
    decide,
    insufficient,
    read_summary,
    summary_header,
)
from learnloop.drift.stats import FloatArray, compare_univariate, univariate_summary

WHAT = "text length"


def text_lengths(texts: Sequence[str]) -> FloatArray:
    return np.fromiter(map(len, texts), dtype=np.float64, count=len(texts))


class TextLengthDriftDetector(Thresholds):
    key = "text_length"
    description = "Text length in characters: two-sample Kolmogorov-Smirnov test; effect = PSI over reference deciles"
    test = "ks"
    effect = "psi"

    def fit(self, reference: ReferenceData) -> dict[str, Any]:
        values = text_lengths(reference.texts)
        return {**summary_header(self.key, values.size), "unit": "characters", **univariate_summary(values)}

    def check(self, summary: Mapping[str, Any], window: Window, *, features: FeatureMap | None = None) -> DriftResult:
        n_reference = read_summary(summary, self.key)
        early = insufficient(
            self, test=self.test, effect=self.effect, n_reference=n_reference, n_window=len(window), what=WHAT
        )
        if early is not None:
            return early
        d, p_value, psi, detail = compare_univariate(summary, n_reference, text_lengths(window.texts))
        detail["unit"] = "characters"
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
