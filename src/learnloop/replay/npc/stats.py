"""The demo's summary statistics: a mean rating with its t interval, two versions' mean ratings
compared (Welch's t-test, and Mann-Whitney's U as the check that needs no normality), and a
proportion's Wilson interval. Pure logic."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

CONFIDENCE = 0.95


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Mean, standard deviation and the t interval of the mean (None where n < 2)."""
    from scipy import stats

    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "ci95": None}
    mean = sum(values) / n
    if n < 2:
        return {"n": n, "mean": mean, "sd": None, "ci95": None}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "ci95": [mean - half, mean + half]}


def compare_means(first: Sequence[float], final: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """final - first: the difference of means with Welch's interval, Welch's two-sided p-value
    and Mann-Whitney's two-sided p-value; None where either side has fewer than 2 values."""
    if len(first) < 2 or len(final) < 2:
        return {"difference": None, "ci95": None, "welch_p": None, "mann_whitney_p": None}
    from scipy import stats

    test = "Welch's t-test (two-sided); Mann-Whitney U (two-sided)"
    if len(set(first)) < 2 and len(set(final)) < 2:  # no spread on either side: t is undefined
        same = set(first) == set(final)
        difference = 0.0 if same else float(final[0] - first[0])
        p = 1.0 if same else None
        return {
            "difference": difference,
            "ci95": [difference, difference],
            "welch_p": p,
            "mann_whitney_p": p,
            "test": test,
        }
    welch = stats.ttest_ind(final, first, equal_var=False)
    low, high = welch.confidence_interval(confidence)
    difference = sum(final) / len(final) - sum(first) / len(first)
    mann_whitney = stats.mannwhitneyu(final, first, alternative="two-sided")
    return {
        "difference": difference,
        "ci95": [_finite(low), _finite(high)],
        "welch_p": _finite(welch.pvalue),
        "mann_whitney_p": float(mann_whitney.pvalue),
        "test": test,
    }


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> list[float] | None:
    """Wilson's score interval of a proportion (None for n = 0)."""
    if n == 0:
        return None
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
