"""How much labelled feedback a rollout needs: "to detect a 2-point change at 80% power?".

* :func:`fixed_sample_size`: per arm, for a fixed-horizon two-sample z-test of two proportions
  on Cohen's ``h`` (arcsine) scale, solved by statsmodels (``NormalIndPower``). Valid only if
  the data are looked at once, at that sample size.
* :func:`sequential_sample_size`: per arm, for the always-valid two-sample mSPRT that learnloop
  runs on live feedback (:mod:`learnloop.evaluation.sequential`), which may be looked at after
  every event. It is the smallest ``n`` with ``P(theta_hat(n) - halfwidth(n) > 0) >= power``
  under the normal approximation ``theta_hat(n) ~ N(delta, V(n))``. That is the probability of
  having crossed the boundary *at* look ``n``; the test may also have crossed earlier and
  stopped, so the probability of a decision *by* ``n`` is at least this: the number is a
  conservative upper bound, and the expected stopping time under ``delta`` is smaller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from learnloop.evaluation.sequential import DEFAULT_TAU, boundary_halfwidth

ALTERNATIVES = ("two-sided", "one-sided")
_MAX_PER_ARM = 10**12


@dataclass(frozen=True)
class SampleSizePlan:
    baseline: float
    delta: float
    alpha: float
    power: float
    fixed_per_arm: int
    sequential_per_arm: int

    def summary(self) -> str:
        return (
            f"To detect {100 * self.delta:+.1f} points from {100 * self.baseline:.1f}% at {self.power:.0%} power "
            f"(alpha {self.alpha:g}): {self.fixed_per_arm:,} labelled feedback events per arm with a fixed-horizon "
            f"test; {self.sequential_per_arm:,} per arm with the always-valid sequential test learnloop uses, "
            "which may stop earlier."
        )


def fixed_sample_size(
    baseline: float, delta: float, *, alpha: float = 0.05, power: float = 0.8, alternative: str = "two-sided"
) -> int:
    """Labelled feedback events per arm for a fixed-horizon test to detect ``baseline -> baseline + delta``.

    ``alternative`` is "two-sided" or "one-sided" (in the direction of ``delta``).
    """
    _check(baseline, delta, alpha, power)
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    effect = abs(float(proportion_effectsize(baseline + delta, baseline)))
    n = NormalIndPower().solve_power(
        effect_size=effect,
        alpha=alpha,
        power=power,
        ratio=1.0,
        alternative="two-sided" if alternative == "two-sided" else "larger",
    )
    return math.ceil(float(n))


def sequential_sample_size(
    baseline: float, delta: float, *, alpha: float = 0.05, power: float = 0.8, tau: float = DEFAULT_TAU
) -> int:
    """Labelled feedback events per arm by which the two-sample mSPRT has decided with probability >= ``power``.

    A conservative bound (see the module docstring), found by bisection over ``n``.
    """
    _check(baseline, delta, alpha, power)
    if not tau > 0.0 or math.isinf(tau):
        raise ValueError(f"tau must be a positive number, got {tau}")
    from scipy.special import ndtri  # the standard normal quantile (scipy.stats.norm.ppf)

    target = float(ndtri(power))
    unit_variance = baseline * (1.0 - baseline) + (baseline + delta) * (1.0 - baseline - delta)
    effect = abs(delta)

    def crossed(n: int) -> bool:
        variance = unit_variance / n
        half = boundary_halfwidth(variance, alpha=alpha, tau=tau)
        return (effect - half) / math.sqrt(variance) >= target

    high = 1
    while not crossed(high):
        high *= 2
        if high > _MAX_PER_ARM:  # pragma: no cover - needs an absurdly small delta
            raise ValueError(f"delta {delta} is too small to detect with any practical sample size")
    low = high // 2  # crossed(low) is False (or low == 0)
    while high - low > 1:
        mid = (low + high) // 2
        if crossed(mid):
            high = mid
        else:
            low = mid
    return high


def plan_sample_size(
    baseline: float, delta: float, *, alpha: float = 0.05, power: float = 0.8, tau: float = DEFAULT_TAU
) -> SampleSizePlan:
    """Both sample sizes, two-sided, with a plain-English :meth:`SampleSizePlan.summary`."""
    return SampleSizePlan(
        baseline=baseline,
        delta=delta,
        alpha=alpha,
        power=power,
        fixed_per_arm=fixed_sample_size(baseline, delta, alpha=alpha, power=power),
        sequential_per_arm=sequential_sample_size(baseline, delta, alpha=alpha, power=power, tau=tau),
    )


def _check(baseline: float, delta: float, alpha: float, power: float) -> None:
    if not 0.0 < baseline < 1.0:
        raise ValueError(f"baseline accuracy must be strictly between 0 and 1, got {baseline}")
    if delta == 0.0 or math.isnan(delta):
        raise ValueError("delta must be a non-zero change in accuracy (e.g. 0.02 for +2 points)")
    if not 0.0 < baseline + delta < 1.0:
        raise ValueError(f"baseline + delta must be strictly between 0 and 1, got {baseline} + {delta}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power}")
