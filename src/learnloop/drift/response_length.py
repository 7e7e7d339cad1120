"""Drift of the length of a generative model's answers, in characters: KS test, PSI as the effect.

Reads ``responses`` (the answers as text) of the reference and of the window; a model whose
answers are not text has none, and the check says so (``insufficient_data``). The same sketch,
bins and thresholds as the text-length detector: PSI over the reference's deciles, drift at 0.10
(the conventional "moderate change"). A model that starts answering in one line, or rambling to
its token limit, moves this long before anyone reads the answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
from learnloop.drift.stats import compare_univariate, univariate_summary
from learnloop.drift.text_length import text_lengths

WHAT = "response length"


class ResponseLengthDriftDetector(Thresholds):
    key = "response_length"
    description = "Answer length in characters: two-sample Kolmogorov-Smirnov test; effect = PSI over reference deciles"
    test = "ks"
    effect = "psi"

    def fit(self, reference: ReferenceData) -> dict[str, Any]:
        values = text_lengths(reference.responses or [])
        return {**summary_header(self.key, values.size), "unit": "characters", **univariate_summary(values)}

    def check(self, summary: Mapping[str, Any], window: Window, *, features: FeatureMap | None = None) -> DriftResult:
        n_reference = read_summary(summary, self.key)
        responses = window.responses or []
        what = WHAT if window.responses is not None else WHAT + " (the window has no text answers)"
        early = insufficient(
            self, test=self.test, effect=self.effect, n_reference=n_reference, n_window=len(responses), what=what
        )
        if early is not None:
            return early
        d, p_value, psi, detail = compare_univariate(summary, n_reference, text_lengths(responses))
        detail["unit"] = "characters"
        return decide(
            self,
            test=self.test,
            statistic=d,
            p_value=p_value,
            effect=self.effect,
            effect_size=psi,
            n_reference=n_reference,
            n_window=len(responses),
            what=WHAT,
            detail=detail,
        )
