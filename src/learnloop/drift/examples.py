"""Which texts of a drift check's window show the drift a detector found: a person reads a few
of them rather than a statistic.

From one detector's stored result (``DriftResult.to_dict()``) and the window's texts with their
answers (probabilities per label, when the task gives them):

* ``text_length`` / ``confidence``: the texts in the bin whose share grew most over the
  reference's (the bins of the detector's PSI);
* ``prediction``: the texts answered with the label whose share grew most;
* ``oov``: the texts using the unknown words the check named, most named words first;
* any other detector (``multivariate``, a generative one): the newest texts of the window.

``example_detector`` picks whose examples to show: the most drifted detector that singles out
texts, else the most drifted of all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from learnloop.drift.stats import tokenize

SINGLES_OUT = ("oov", "text_length", "prediction", "confidence")


@dataclass(frozen=True)
class DriftExamples:
    detector: str
    why: str  # which part of the window they come from, in words
    texts: list[str]


def _grown(detail: Mapping[str, Any]) -> int | None:
    ref, win = detail.get("reference_share"), detail.get("window_share")
    if not ref or not win or len(ref) != len(win):
        return None
    return int(np.argmax(np.asarray(win, dtype=np.float64) - np.asarray(ref, dtype=np.float64)))


def bin_label(edges: Sequence[float], b: int) -> str:
    """The range of bin ``b`` of ``stats.bin_shares``: ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""
    if not edges:
        return "all values"
    if b == 0:
        return f"<= {edges[0]:.3g}"
    if b >= len(edges):
        return f"> {edges[-1]:.3g}"
    return f"{edges[b - 1]:.3g} to {edges[b]:.3g}"


def _in_bin(values: Sequence[float], edges: Sequence[float], b: int) -> list[bool]:
    found = np.searchsorted(np.asarray(edges, dtype=np.float64), np.asarray(values, dtype=np.float64), side="left")
    return [bool(x == b) for x in found]


def _top_confidence(answer: Mapping[str, Any]) -> float:
    probabilities = answer.get("probabilities") or {}
    return float(max(probabilities.values())) if probabilities else float("nan")


def drifted_examples(
    result: Mapping[str, Any], texts: Sequence[str], answers: Sequence[Mapping[str, Any]], limit: int = 5
) -> DriftExamples:
    """Up to ``limit`` texts of the window (``texts``, newest first, with their ``answers``)."""
    detector, detail = str(result.get("detector", "?")), result.get("detail") or {}
    grown = _grown(detail)
    chosen: list[bool] | None = None
    why = "the newest answers of the window"
    if detector in ("text_length", "confidence") and grown is not None:
        edges = list(detail.get("edges") or [])
        values = [float(len(t)) for t in texts] if detector == "text_length" else [_top_confidence(a) for a in answers]
        chosen = _in_bin(values, edges, grown)
        unit = "characters" if detector == "text_length" else "top-class probability"
        why = f"{unit} {bin_label(edges, grown)}: the range whose share grew most"
    elif detector == "prediction" and grown is not None and detail.get("labels"):
        label = str(detail["labels"][grown])
        chosen = [str(a.get("label")) == label for a in answers]
        why = f"answered {label!r}: the label whose share grew most"
    elif detector == "oov" and detail.get("top_unknown_words"):
        words = [str(w["token"]) for w in detail["top_unknown_words"]]
        rank = {w: i for i, w in enumerate(words)}
        first = [min((rank[w] for w in tokenize(t) if w in rank), default=len(words)) for t in texts]
        picked = [i for r, i in sorted(zip(first, range(len(texts)), strict=True)) if r < len(words)][:limit]
        shown = ", ".join(words[:5])
        return DriftExamples(detector, f"using words the model never learned ({shown})", [texts[i] for i in picked])
    if chosen is None:
        return DriftExamples(detector, why, list(texts[:limit]))
    return DriftExamples(detector, why, [t for t, keep in zip(texts, chosen, strict=True) if keep][:limit])


def by_drift(results: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The detectors with an effect, the ones to show first first: those that alarmed, then
    the others, each group by its effect as a multiple of its threshold, largest first."""

    def key(r: Mapping[str, Any]) -> tuple[bool, float]:
        threshold = float(r.get("effect_threshold") or 1.0)
        return bool(r.get("drifted")), float(r.get("effect_size") or 0.0) / threshold

    return sorted((r for r in results if r.get("effect_size") is not None), key=key, reverse=True)


def example_detector(results: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    ranked = by_drift(results)
    drifted = [r for r in ranked if r.get("drifted")] or ranked
    return next((r for r in drifted if r.get("detector") in SINGLES_OUT), ranked[0] if ranked else None)
