"""Always-valid comparison of two versions' accuracy from live feedback (canary, shadow, A/B).

The test
--------
The mixture sequential probability ratio test (mSPRT) with a normal mixture (Johari, Pekelis and
Walsh, "Always valid inference", Operations Research 2022), in its confidence-sequence form.
Let ``theta`` be the accuracy of B minus the accuracy of A, ``theta_hat`` its estimate at the
current look and ``V`` the estimate's variance. Mixing the normal likelihood ratio of
``theta_hat`` over a prior ``theta ~ N(theta0, tau^2)`` gives

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 (theta_hat - theta0)^2 / (2 V (V + tau^2))),

a nonnegative martingale under ``theta = theta0``; by Ville's inequality it exceeds ``1/alpha``
at *any* look with probability at most ``alpha``. So the always-valid p-value is the running
minimum of ``1/Lambda`` over looks, and the set of ``theta0`` with ``Lambda < 1/alpha`` is the
always-valid interval

    theta_hat +- sqrt(V (V + tau^2) / tau^2 * (2 log(1/alpha) + log((V + tau^2) / V))).

The interval and the p-value agree: at one look, ``1/Lambda < alpha`` exactly when 0 lies
outside the interval. A caller that looks many times may stop the first time the interval
excludes 0 (or a margin), and the error rate stays below ``alpha`` however often it looked.

Two designs are provided:

* :func:`two_sample`: unpaired arms (a canary: each request goes to one version), with
  ``V = p_a (1 - p_a) / n_a + p_b (1 - p_b) / n_b``.
* :func:`paired`: both versions answered the same request (shadow), with the per-pair
  difference ``D in {-1, 0, 1}`` and ``V = (p_10 + p_01 - (p_01 - p_10)^2) / n``.

Assumptions
-----------
Exact validity holds for normal data with known variance. Here the data are Bernoulli and
``V`` is estimated, so validity is *asymptotic*: it relies on ``theta_hat`` being close to
normal and ``V`` close to the truth at every look where a decision can be taken. With a few
dozen events per arm neither holds (an arm at 95% accuracy has seen a handful of errors, and a
plug-in variance of 0 would make the interval collapse). Two things guard against that:
variances are computed from smoothed rates (one success and one failure added per arm,
Agresti-Caffo; half a count per cell of the paired table, Agresti-Min), and callers should
still require a minimum number of labelled events per arm (a few hundred) before acting on a
result; this module does not enforce one. Feedback must also be independent of the arm's identity
(the same users, the same labelling, sticky assignment), or no statistic can help.

Choosing tau
------------
``tau`` is the spread of the effects the test is tuned for, in accuracy units (0.02 = 2
points). The boundary is tightest when ``V`` is about ``tau^2`` divided by a log factor, i.e.
when enough data have arrived to see an effect of size about ``tau``; a too-small ``tau``
wastes power on large effects, a too-large one on small effects. The effects we care about are
1-5 accuracy points at baselines 0.70-0.95. The study: over baselines 0.70/0.75/0.80/0.85/
0.90/0.95 and deltas +-1..5 points (alpha 0.05, power 0.8), the per-arm sample size by which
the two-sample test has crossed (:func:`learnloop.evaluation.power.sequential_sample_size`),
divided by the fixed-horizon test's. Worst-case / mean ratio by tau:

    tau     0.005  0.01  0.015  0.02  0.025  0.03  0.04  0.05  0.07  0.10
    max      4.40  2.78   2.36  2.22   2.17  2.23  2.32  2.40  2.51  2.62
    mean     3.08  2.25   2.06  2.00   2.00  2.02  2.06  2.12  2.21  2.32

Both are minimised at ``DEFAULT_TAU = 0.025``. A seeded simulation (looks every 20 events
per arm, 300 runs per cell) agreed: at 85% -> 87% the median stop was 5,620 / 4,310 / 4,060
events per arm for tau 0.01 / 0.025 / 0.05 and 80% of runs had stopped by 8,440 / 7,400 /
8,100 (fixed horizon: 4,720); only for 1-point effects at 90-95% does tau 0.01 do better
(80% by 19,916 vs 24,424 at 90% -> 91%), and those need tens of thousands of events anyway.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_TAU = 0.025

TWO_SAMPLE = "two-sample"
PAIRED = "paired"


@dataclass(frozen=True)
class ArmCounts:
    """Labelled feedback on one arm: ``successes`` correct out of ``n``."""

    n: int
    successes: int

    def __post_init__(self) -> None:
        if self.n < 0 or not 0 <= self.successes <= self.n:
            raise ValueError(f"need 0 <= successes <= n, got successes={self.successes}, n={self.n}")

    @property
    def rate(self) -> float | None:
        """The observed accuracy, or None when the arm has no feedback yet."""
        return self.successes / self.n if self.n else None


@dataclass(frozen=True)
class SequentialResult:
    """One look at an always-valid comparison; ``estimate`` and the interval are B minus A."""

    test: str
    design: str
    estimate: float
    ci_low: float
    ci_high: float
    alpha: float
    tau: float
    n_a: int
    n_b: int
    rate_a: float | None  # None when the arm has no feedback
    rate_b: float | None
    p_value: float  # always-valid, against "no difference"; running minimum over looks

    def shown_better(self, margin: float = 0.0) -> bool:
        """B beats A by more than ``margin`` (accuracy units)."""
        return self.ci_low > margin

    def shown_worse(self, margin: float = 0.0) -> bool:
        """B is worse than A by more than ``margin``."""
        return self.ci_high < -margin

    def shown_non_inferior(self, margin: float) -> bool:
        """B is worse than A by less than ``margin``, if at all."""
        return self.ci_low > -margin

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def boundary_halfwidth(variance: float, *, alpha: float, tau: float) -> float:
    """Half-width of the always-valid ``1 - alpha`` interval for an estimate with this variance."""
    if variance <= 0.0:
        return 0.0
    ratio = (variance + tau * tau) / variance
    return math.sqrt(variance * (variance + tau * tau) / (tau * tau) * (2.0 * math.log(1.0 / alpha) + math.log(ratio)))


def log_mixture_ratio(estimate: float, variance: float, *, tau: float, theta0: float = 0.0) -> float:
    """``log Lambda``: the log of the normal-mixture likelihood ratio against ``theta = theta0``."""
    total = variance + tau * tau
    return 0.5 * math.log(variance / total) + tau * tau * (estimate - theta0) ** 2 / (2.0 * variance * total)


def two_sample(
    a: ArmCounts,
    b: ArmCounts,
    *,
    alpha: float = 0.05,
    tau: float = DEFAULT_TAU,
    previous_p: float = 1.0,
) -> SequentialResult:
    """Compare unpaired arms (different requests on each arm), B minus A.

    ``previous_p`` is the ``p_value`` of this comparison's previous look (1.0 at the first);
    the returned p-value is the running minimum, which is what keeps it valid across looks.
    While either arm has no feedback the interval is [-1, 1] and the p-value is ``previous_p``.
    """
    _check(alpha, tau, previous_p)
    if a.n == 0 or b.n == 0:
        return _result(TWO_SAMPLE, 0.0, None, alpha, tau, a.n, b.n, a.rate, b.rate, previous_p)
    estimate = b.successes / b.n - a.successes / a.n
    variance = _smoothed_variance(a) + _smoothed_variance(b)
    return _result(TWO_SAMPLE, estimate, variance, alpha, tau, a.n, b.n, a.rate, b.rate, previous_p)


def paired(
    both: int,
    a_only: int,
    b_only: int,
    neither: int,
    *,
    alpha: float = 0.05,
    tau: float = DEFAULT_TAU,
    previous_p: float = 1.0,
) -> SequentialResult:
    """Compare two versions that answered the same requests, B minus A.

    The counts are pairs with feedback where both versions were right, only A, only B, neither.
    ``previous_p`` is as in :func:`two_sample`.
    """
    _check(alpha, tau, previous_p)
    counts = {"both": both, "a_only": a_only, "b_only": b_only, "neither": neither}
    negative = {name: value for name, value in counts.items() if value < 0}
    if negative:
        raise ValueError(f"pair counts must be >= 0, got {negative}")
    n = both + a_only + b_only + neither
    if n == 0:
        return _result(PAIRED, 0.0, None, alpha, tau, 0, 0, None, None, previous_p)
    estimate = (b_only - a_only) / n
    # Agresti-Min: half a count in each of the four cells, so 0 discordant pairs still has a variance.
    p10, p01, n_adj = (a_only + 0.5) / (n + 2.0), (b_only + 0.5) / (n + 2.0), n + 2.0
    variance = (p10 + p01 - (p01 - p10) ** 2) / n_adj
    rate_a, rate_b = (both + a_only) / n, (both + b_only) / n
    return _result(PAIRED, estimate, variance, alpha, tau, n, n, rate_a, rate_b, previous_p)


def _smoothed_variance(arm: ArmCounts) -> float:
    """Variance of an arm's rate with one success and one failure added (Agresti-Caffo)."""
    p = (arm.successes + 1.0) / (arm.n + 2.0)
    return p * (1.0 - p) / arm.n


def _result(
    design: str,
    estimate: float,
    variance: float | None,
    alpha: float,
    tau: float,
    n_a: int,
    n_b: int,
    rate_a: float | None,
    rate_b: float | None,
    previous_p: float,
) -> SequentialResult:
    if variance is None:  # an arm without feedback: nothing is known yet
        low, high, p = -1.0, 1.0, previous_p
    else:
        half = boundary_halfwidth(variance, alpha=alpha, tau=tau)
        low, high = max(-1.0, estimate - half), min(1.0, estimate + half)
        p = min(previous_p, math.exp(-max(0.0, log_mixture_ratio(estimate, variance, tau=tau))))
    return SequentialResult(
        test=f"mSPRT, normal mixture tau={tau:g} (always-valid)",
        design=design,
        estimate=float(estimate),
        ci_low=float(low),
        ci_high=float(high),
        alpha=float(alpha),
        tau=float(tau),
        n_a=int(n_a),  # plain Python numbers even when the caller passed numpy integers
        n_b=int(n_b),
        rate_a=None if rate_a is None else float(rate_a),
        rate_b=None if rate_b is None else float(rate_b),
        p_value=float(p),
    )


def _check(alpha: float, tau: float, previous_p: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not tau > 0.0 or math.isinf(tau):
        raise ValueError(f"tau must be a positive number, got {tau}")
    if not 0.0 <= previous_p <= 1.0:  # 0.0 is possible: an overwhelming difference underflows 1/Lambda
        raise ValueError(f"previous_p must be in [0, 1], got {previous_p}")
