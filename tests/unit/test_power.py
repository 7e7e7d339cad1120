"""Sample-size planning: fixed-horizon (statsmodels) and the always-valid sequential test."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from learnloop.evaluation import DEFAULT_TAU, fixed_sample_size, plan_sample_size, sequential_sample_size


def cohen_h(p1: float, p2: float) -> float:
    return 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1))


def textbook_per_arm(p1: float, p2: float, alpha: float, power: float, sides: int) -> float:
    """n per group = 2 ((z_{1-alpha/sides} + z_power) / h)^2 (Cohen 1988, ch. 6, normal approximation)."""
    z = norm.ppf(1 - alpha / sides) + norm.ppf(power)
    return float(2 * (z / cohen_h(p1, p2)) ** 2)


def sequential_power_at(n: int, p1: float, p2: float, alpha: float, tau: float) -> float:
    """P(theta_hat - halfwidth > 0) at n per arm, with the mSPRT boundary written out from the formula."""
    v = (p1 * (1 - p1) + p2 * (1 - p2)) / n
    t2 = tau * tau
    half = math.sqrt(v * (v + t2) / t2 * (2 * math.log(1 / alpha) + math.log((v + t2) / v)))
    return float(norm.cdf((abs(p2 - p1) - half) / math.sqrt(v)))


@pytest.mark.parametrize(
    ("baseline", "delta", "alpha", "power", "alternative", "sides"),
    [
        (0.85, 0.02, 0.05, 0.8, "two-sided", 2),
        (0.70, -0.05, 0.05, 0.9, "two-sided", 2),
        (0.95, 0.01, 0.01, 0.8, "two-sided", 2),
        (0.50, 0.10, 0.05, 0.8, "one-sided", 1),
        (0.90, -0.03, 0.10, 0.8, "one-sided", 1),
    ],
)
def test_fixed_sample_size_matches_the_textbook_formula(
    baseline: float, delta: float, alpha: float, power: float, alternative: str, sides: int
) -> None:
    expected = textbook_per_arm(baseline, baseline + delta, alpha, power, sides)
    n = fixed_sample_size(baseline, delta, alpha=alpha, power=power, alternative=alternative)
    # statsmodels also counts the (negligible) far tail of a two-sided test, so allow one event
    assert math.ceil(expected) - 1 <= n <= math.ceil(expected)
    assert n >= expected - 1


def test_fixed_sample_size_reproduces_cohens_table_value() -> None:
    # Cohen (1988), table 6.4.1: h = 0.20, two-sided alpha 0.05, power 0.80 -> n = 392 per group
    # (the exact value is 392.4; the table rounds, we round up). p1 = 0.5 and
    # p2 = sin(asin(sqrt(0.5)) + 0.1)^2 give h = 0.20 exactly.
    p2 = math.sin(math.asin(math.sqrt(0.5)) + 0.1) ** 2
    assert fixed_sample_size(0.5, p2 - 0.5) == 393


def test_sequential_sample_size_is_the_first_n_with_enough_power() -> None:
    for baseline, delta, alpha, tau in [
        (0.85, 0.02, 0.05, DEFAULT_TAU),
        (0.82, 0.03, 0.05, 0.05),
        (0.7, -0.04, 0.01, 0.01),
    ]:
        n = sequential_sample_size(baseline, delta, alpha=alpha, tau=tau)
        assert sequential_power_at(n, baseline, baseline + delta, alpha, tau) >= 0.8
        assert sequential_power_at(n - 1, baseline, baseline + delta, alpha, tau) < 0.8


@settings(max_examples=60, deadline=None)
@given(
    st.floats(min_value=0.6, max_value=0.84),  # so that baseline +- 3 * 0.05 stays inside (0, 1)
    st.floats(min_value=0.005, max_value=0.05),
    st.floats(min_value=1.2, max_value=3.0),
    st.sampled_from([1, -1]),
)
def test_smaller_changes_need_more_feedback(baseline: float, delta: float, factor: float, sign: int) -> None:
    small, large = sign * delta, sign * delta * factor
    assert fixed_sample_size(baseline, small) > fixed_sample_size(baseline, large)
    assert sequential_sample_size(baseline, small) > sequential_sample_size(baseline, large)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(min_value=0.6, max_value=0.93),
    st.floats(min_value=0.005, max_value=0.05),
    st.floats(min_value=0.5, max_value=0.85),
    st.floats(min_value=0.02, max_value=0.14),
)
def test_more_power_or_a_stricter_alpha_needs_more_feedback(
    baseline: float, delta: float, power: float, step: float
) -> None:
    assert fixed_sample_size(baseline, delta, power=power + step) > fixed_sample_size(baseline, delta, power=power)
    assert sequential_sample_size(baseline, delta, power=power + step) >= sequential_sample_size(
        baseline, delta, power=power
    )
    assert fixed_sample_size(baseline, delta, alpha=0.01) > fixed_sample_size(baseline, delta, alpha=0.05)
    assert sequential_sample_size(baseline, delta, alpha=0.01) > sequential_sample_size(baseline, delta, alpha=0.05)


@pytest.mark.parametrize("baseline", [0.7, 0.8, 0.85, 0.9, 0.95])
@pytest.mark.parametrize("delta", [-0.05, -0.02, -0.01, 0.01, 0.02, 0.04])
def test_always_valid_test_costs_more_than_a_fixed_horizon(baseline: float, delta: float) -> None:
    if not 0 < baseline + delta < 1:
        pytest.skip("outside (0, 1)")
    assert sequential_sample_size(baseline, delta) >= fixed_sample_size(baseline, delta)


def test_plan_summary_states_both_numbers_in_plain_english() -> None:
    plan = plan_sample_size(0.85, 0.02)
    assert plan.fixed_per_arm == fixed_sample_size(0.85, 0.02)
    assert plan.sequential_per_arm == sequential_sample_size(0.85, 0.02)
    text = plan.summary()
    assert text.startswith("To detect +2.0 points from 85.0% at 80% power (alpha 0.05): ")
    assert f"{plan.fixed_per_arm:,} labelled feedback events per arm with a fixed-horizon test" in text
    assert f"{plan.sequential_per_arm:,} per arm with the always-valid sequential test" in text
    assert "-3.0 points from 90.0%" in plan_sample_size(0.9, -0.03).summary()


@pytest.mark.parametrize(
    ("baseline", "delta", "kwargs", "message"),
    [
        (0.0, 0.02, {}, "baseline"),
        (1.0, -0.02, {}, "baseline"),
        (0.85, 0.0, {}, "non-zero"),
        (0.99, 0.02, {}, r"baseline \+ delta"),
        (0.02, -0.05, {}, r"baseline \+ delta"),
        (0.85, 0.02, {"alpha": 0.0}, "alpha"),
        (0.85, 0.02, {"power": 1.0}, "power"),
    ],
)
def test_impossible_plans_are_refused_with_a_clear_message(
    baseline: float, delta: float, kwargs: dict[str, float], message: str
) -> None:
    alpha, power = kwargs.get("alpha", 0.05), kwargs.get("power", 0.8)
    with pytest.raises(ValueError, match=message):
        fixed_sample_size(baseline, delta, alpha=alpha, power=power)
    with pytest.raises(ValueError, match=message):
        sequential_sample_size(baseline, delta, alpha=alpha, power=power)


def test_unknown_alternative_and_bad_tau_are_refused() -> None:
    with pytest.raises(ValueError, match="alternative"):
        fixed_sample_size(0.85, 0.02, alternative="larger")
    with pytest.raises(ValueError, match="tau"):
        sequential_sample_size(0.85, 0.02, tau=0.0)
