"""Drift of the share of refusals among a generative model's answers: chi-squared test, the
absolute change of the share as the effect.

A refusal is recognised by ``is_refusal``, a heuristic with no model behind it: the answer
opens with an English refusal (``REFUSAL_OPENERS``: "I can't", "I'm unable to", "I must
decline", "As an AI", ...), possibly after an apology ("I'm sorry, but", "Unfortunately,"),
compared lower-case with straight apostrophes. It misses refusals in other languages, ones
phrased otherwise and ones that come late in an answer; what it counts, it counts the same way
on both sides, so a change of the share is a change of the model's behaviour or of what it is
asked. (The generation task's answer categories use the same rule.)

Test: the chi-squared test of homogeneity of the 2 x 2 table (refused, answered) x (reference,
window), two-sided: a model that stops refusing is news too. Effect: the absolute difference of
the refusal shares, threshold 0.05 (five more or fewer answers in a hundred are refusals).
Reads ``responses``; a window without text answers is ``insufficient_data``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from learnloop.drift.stats import chi2_homogeneity

WHAT = "share of refusals"
REFUSAL_OPENERS = (
    "i can't",
    "i cannot",
    "i can not",
    "i won't",
    "i will not",
    "i'm unable to",
    "i am unable to",
    "i'm not able to",
    "i am not able to",
    "i must decline",
    "i'm not comfortable",
    "as an ai",
)
APOLOGIES = ("i'm sorry", "i am sorry", "sorry", "i apologize", "i apologise", "unfortunately")


def is_refusal(response: str) -> bool:
    """Whether a response opens by refusing (``REFUSAL_OPENERS``, possibly after an apology)."""
    text = response.strip().lstrip("\"'*").replace("\u2019", "'").lower()
    for apology in APOLOGIES:
        if text.startswith(apology):
            text = text[len(apology) :].lstrip(" ,.!").removeprefix("but").lstrip(" ,")
            break
    return text.startswith(REFUSAL_OPENERS)


def refusal_count(responses: Sequence[str]) -> int:
    return sum(1 for r in responses if is_refusal(r))


class RefusalDriftDetector(Thresholds):
    key = "refusal"
    description = "Share of refusals among text answers: chi-squared test; effect = absolute change of the share"
    test = "chi-squared"
    effect = "share_difference"

    default_effect = 0.05

    def fit(self, reference: ReferenceData) -> dict[str, Any]:
        responses = reference.responses or []
        return {**summary_header(self.key, len(responses)), "refused": refusal_count(responses)}

    def check(self, summary: Mapping[str, Any], window: Window, *, features: FeatureMap | None = None) -> DriftResult:
        n_reference = read_summary(summary, self.key)
        responses = window.responses or []
        what = WHAT if window.responses is not None else WHAT + " (the window has no text answers)"
        n_window = len(responses)
        early = insufficient(
            self, test=self.test, effect=self.effect, n_reference=n_reference, n_window=n_window, what=what
        )
        if early is not None:
            return early
        reference_refused, window_refused = int(summary["refused"]), refusal_count(responses)
        reference_counts = [reference_refused, n_reference - reference_refused]
        window_counts = [window_refused, n_window - window_refused]
        # all answered (or all refused) on both sides: one column, nothing to test (chi2 0, p 1)
        chi2, p_value, _ = chi2_homogeneity(reference_counts, window_counts)
        reference_share, window_share = reference_refused / n_reference, window_refused / n_window
        detail = {
            "reference_refused": reference_refused,
            "window_refused": window_refused,
            "reference_share": reference_share,
            "window_share": window_share,
        }
        return decide(
            self,
            test=self.test,
            statistic=chi2,
            p_value=p_value,
            effect=self.effect,
            effect_size=abs(window_share - reference_share),
            n_reference=n_reference,
            n_window=n_window,
            what=WHAT,
            detail=detail,
        )
