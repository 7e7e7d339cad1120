"""Guardrails: a challenger is rolled back at once, whatever the accuracy test says, when

* **errors**: its answers fail (the champion answered instead) more often than
  ``guardrail_max_error_rate``, shown by the lower bound of the 95% Wilson interval of its
  error rate (so three failures in the first ten requests trip it, one in a thousand does not);
* **latency**: its p99 latency exceeds ``guardrail_latency_ratio`` times the baseline's
  (the baseline's p99 is floored at 1 ms, so microsecond jitter cannot trip it);
* **prediction shift**: the distribution of its answers differs from the baseline's by more
  than ``guardrail_max_label_shift`` in total variation, *and* a chi-squared test of the two
  distributions is significant at ``alpha``. The arms see the same kind of traffic (the split
  is random), so a large shift means the challenger answers differently, not that the
  traffic changed. (A generative model's categories are answer, refusal and truncated: a
  challenger that refuses far more often trips this one.)
* **length shift** (tasks with an answer size: a generated response's length): the median
  size of its answers differs from the baseline's by more than ``guardrail_max_length_shift``
  of the baseline's (the baseline's median floored at one), *and* a two-sided Mann-Whitney U
  test of the two samples is significant at ``alpha``.

Latency, prediction shift and length shift need ``guardrail_min_predictions`` answers on each arm. Pure
logic; the controller reads the numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from learnloop.evaluation.metrics import wilson_interval
from learnloop.policy import Policy

LATENCY_FLOOR_MS = 1.0
MIN_ERRORS = 3
SIZE_FLOOR = 1.0  # a baseline median below this counts as this (an empty answer's size is 0)


@dataclass(frozen=True)
class GuardrailCheck:
    name: str
    tripped: bool
    value: float | None
    limit: float
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def error_rate(failures: int, served: int, policy: Policy) -> GuardrailCheck:
    """``served`` requests routed to the challenger, ``failures`` of them answered by the champion."""
    limit = policy.rollout.guardrail_max_error_rate
    if served == 0:
        return GuardrailCheck("errors", False, None, limit, "no requests on the challenger yet")
    low, high = wilson_interval(failures, served, 0.95)
    rate = failures / served
    tripped = failures >= MIN_ERRORS and low > limit
    return GuardrailCheck(
        "errors",
        tripped,
        rate,
        limit,
        f"{failures} of {served} challenger answers failed ({rate:.1%}, 95% CI [{low:.1%}, {high:.1%}]; "
        f"limit {limit:.1%})" + (": TRIPPED" if tripped else ""),
        {"failures": failures, "served": served, "ci_low": low, "ci_high": high},
    )


def latency(baseline_ms: Sequence[float], challenger_ms: Sequence[float], policy: Policy) -> GuardrailCheck:
    limit = policy.rollout.guardrail_latency_ratio
    n = policy.rollout.guardrail_min_predictions
    if len(baseline_ms) < n or len(challenger_ms) < n:
        return GuardrailCheck(
            "latency",
            False,
            None,
            limit,
            f"p99 latency needs {n} answers per arm (have {len(baseline_ms)} and {len(challenger_ms)})",
        )
    base = float(np.percentile(baseline_ms, 99))
    chal = float(np.percentile(challenger_ms, 99))
    ratio = chal / max(base, LATENCY_FLOOR_MS)
    tripped = ratio > limit
    return GuardrailCheck(
        "latency",
        tripped,
        ratio,
        limit,
        f"challenger p99 {chal:.2f} ms vs baseline {base:.2f} ms (ratio {ratio:.2f} against the "
        f"baseline floored at {LATENCY_FLOOR_MS:g} ms; limit {limit:g})" + (": TRIPPED" if tripped else ""),
        {
            "baseline_p99_ms": base,
            "challenger_p99_ms": chal,
            "n_baseline": len(baseline_ms),
            "n_challenger": len(challenger_ms),
        },
    )


def label_shift(
    baseline_labels: Sequence[str], challenger_labels: Sequence[str], labels: Sequence[str], policy: Policy
) -> GuardrailCheck:
    limit = policy.rollout.guardrail_max_label_shift
    n = policy.rollout.guardrail_min_predictions
    if len(baseline_labels) < n or len(challenger_labels) < n:
        return GuardrailCheck(
            "prediction_shift",
            False,
            None,
            limit,
            f"answer distributions need {n} answers per arm (have {len(baseline_labels)} and {len(challenger_labels)})",
        )
    a, b = Counter(baseline_labels), Counter(challenger_labels)
    table = np.array([[a[lab] for lab in labels], [b[lab] for lab in labels]], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    share_a, share_b = table[0] / table[0].sum(), table[1] / table[1].sum()
    tv = float(0.5 * np.abs(share_a - share_b).sum())
    from scipy.stats import chi2_contingency

    p = float(chi2_contingency(table).pvalue) if table.shape[1] > 1 else 1.0
    tripped = tv > limit and p < policy.gate.alpha
    return GuardrailCheck(
        "prediction_shift",
        tripped,
        tv,
        limit,
        f"answer distributions differ by {tv:.2f} total variation (chi-squared p={p:.2g}; limit {limit:g})"
        + (": TRIPPED" if tripped else ""),
        {
            "baseline": {lab: a[lab] for lab in labels},
            "challenger": {lab: b[lab] for lab in labels},
            "p_value": p,
        },
    )


def length_shift(baseline_sizes: Sequence[float], challenger_sizes: Sequence[float], policy: Policy) -> GuardrailCheck:
    """The sizes of each arm's answers (a generated response's length)."""
    limit = policy.rollout.guardrail_max_length_shift
    n = policy.rollout.guardrail_min_predictions
    if len(baseline_sizes) < n or len(challenger_sizes) < n:
        return GuardrailCheck(
            "length_shift",
            False,
            None,
            limit,
            f"answer lengths need {n} answers per arm (have {len(baseline_sizes)} and {len(challenger_sizes)})",
        )
    from scipy.stats import mannwhitneyu

    base = float(np.median(baseline_sizes))
    chal = float(np.median(challenger_sizes))
    shift = (chal - base) / max(base, SIZE_FLOOR)
    p = float(mannwhitneyu(baseline_sizes, challenger_sizes, alternative="two-sided").pvalue)
    tripped = abs(shift) > limit and p < policy.gate.alpha
    return GuardrailCheck(
        "length_shift",
        tripped,
        shift,
        limit,
        f"challenger median answer length {chal:g} vs baseline {base:g} ({shift:+.0%}; Mann-Whitney p={p:.2g}; "
        f"limit {limit:.0%})" + (": TRIPPED" if tripped else ""),
        {
            "baseline_median": base,
            "challenger_median": chal,
            "p_value": p,
            "n_baseline": len(baseline_sizes),
            "n_challenger": len(challenger_sizes),
        },
    )
