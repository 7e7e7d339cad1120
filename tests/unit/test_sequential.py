"""The always-valid mSPRT comparison: reference values, error rates under repeated looks, invariants."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.stats import norm

from learnloop.evaluation import DEFAULT_TAU, ArmCounts, SequentialResult, paired, sequential_sample_size, two_sample
from learnloop.evaluation.sequential import log_mixture_ratio

ALPHA = 0.05
STEP = 20  # feedback events per arm between looks


def reference_log_lambda(estimate: float, variance: float, tau: float, theta0: float = 0.0) -> float:
    """log of the mixture likelihood ratio by its definition: the likelihood of ``estimate``
    averaged over ``theta ~ N(theta0, tau^2)``, divided by its likelihood at ``theta0``;
    the average is integrated numerically."""
    sd = math.sqrt(variance)

    def integrand(theta: float) -> float:
        return float(norm.pdf(estimate, theta, sd) * norm.pdf(theta, theta0, tau))

    width = 12 * max(sd, tau)
    lower, upper = min(estimate, theta0) - width, max(estimate, theta0) + width
    mixed, _ = quad(integrand, lower, upper, points=sorted({estimate, theta0}), limit=400, epsabs=0, epsrel=1e-10)
    return math.log(mixed) - float(norm.logpdf(estimate, theta0, sd))


def reference_interval(estimate: float, variance: float, tau: float, alpha: float) -> tuple[float, float]:
    """The theta0 where the reference ratio reaches 1/alpha, on either side of the estimate (root finding)."""

    def excess(theta0: float) -> float:
        return reference_log_lambda(estimate, variance, tau, theta0) - math.log(1 / alpha)

    reach = 12 * math.sqrt(variance)
    return brentq(excess, estimate - reach, estimate, xtol=1e-12), brentq(
        excess, estimate, estimate + reach, xtol=1e-12
    )


def smoothed_variance(n: int, successes: int) -> float:
    p = (successes + 1) / (n + 2)
    return p * (1 - p) / n


# --- reference values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"), [((1000, 850), (1000, 880)), ((400, 300), (900, 700)), ((3000, 2550), (2500, 2120))]
)
def test_two_sample_interval_and_p_value_match_the_mixture_ratio_computed_from_its_definition(
    a: tuple[int, int], b: tuple[int, int]
) -> None:
    result = two_sample(ArmCounts(*a), ArmCounts(*b), alpha=ALPHA, tau=DEFAULT_TAU)
    estimate = b[1] / b[0] - a[1] / a[0]
    variance = smoothed_variance(*a) + smoothed_variance(*b)

    low, high = reference_interval(estimate, variance, DEFAULT_TAU, ALPHA)
    assert result.estimate == pytest.approx(estimate, abs=1e-12)
    assert result.ci_low == pytest.approx(low, abs=1e-7)
    assert result.ci_high == pytest.approx(high, abs=1e-7)
    assert result.p_value == pytest.approx(
        min(1.0, math.exp(-reference_log_lambda(estimate, variance, DEFAULT_TAU))), rel=1e-6
    )
    assert result.rate_a == pytest.approx(a[1] / a[0])
    assert result.rate_b == pytest.approx(b[1] / b[0])
    assert (result.n_a, result.n_b, result.design) == (a[0], b[0], "two-sample")


def test_paired_uses_the_variance_of_the_per_pair_difference() -> None:
    both, a_only, b_only, neither = 700, 40, 75, 185
    n = both + a_only + b_only + neither
    result = paired(both, a_only, b_only, neither, alpha=ALPHA)
    p10, p01 = (a_only + 0.5) / (n + 2), (b_only + 0.5) / (n + 2)
    variance = (p10 + p01 - (p01 - p10) ** 2) / (n + 2)
    estimate = (b_only - a_only) / n

    low, high = reference_interval(estimate, variance, DEFAULT_TAU, ALPHA)
    assert result.ci_low == pytest.approx(low, abs=1e-7)
    assert result.ci_high == pytest.approx(high, abs=1e-7)
    assert result.p_value == pytest.approx(math.exp(-reference_log_lambda(estimate, variance, DEFAULT_TAU)), rel=1e-6)
    assert result.rate_a == pytest.approx(0.74)
    assert result.rate_b == pytest.approx(0.775)
    assert (result.n_a, result.n_b, result.design) == (n, n, "paired")


def test_an_underflowed_p_value_can_be_passed_back_in() -> None:
    overwhelming = two_sample(ArmCounts(5000, 0), ArmCounts(5000, 5000))
    assert overwhelming.p_value == 0.0
    assert two_sample(ArmCounts(5001, 0), ArmCounts(5001, 5001), previous_p=overwhelming.p_value).p_value == 0.0


def test_p_value_is_the_running_minimum_over_looks() -> None:
    strong = two_sample(ArmCounts(2000, 1700), ArmCounts(2000, 1800))
    later = two_sample(ArmCounts(2100, 1790), ArmCounts(2100, 1800), previous_p=strong.p_value)
    fresh = two_sample(ArmCounts(2100, 1790), ArmCounts(2100, 1800))
    assert strong.p_value < ALPHA
    assert fresh.p_value > strong.p_value
    assert later.p_value == strong.p_value


# --- invariants -------------------------------------------------------------------------------

arm = st.integers(min_value=1, max_value=5000).flatmap(
    lambda n: st.builds(ArmCounts, st.just(n), st.integers(min_value=0, max_value=n))
)
alphas = st.floats(min_value=0.001, max_value=0.5)
taus = st.floats(min_value=0.002, max_value=0.5)
counts = st.integers(min_value=0, max_value=3000)


@settings(max_examples=100, deadline=None)
@given(arm, arm, alphas, taus)
def test_zero_is_outside_the_interval_exactly_when_p_is_below_alpha(
    a: ArmCounts, b: ArmCounts, alpha: float, tau: float
) -> None:
    result = two_sample(a, b, alpha=alpha, tau=tau)
    variance = smoothed_variance(a.n, a.successes) + smoothed_variance(b.n, b.successes)
    # skip the knife edge, where rounding may put the two computations on different sides
    assume(abs(log_mixture_ratio(result.estimate, variance, tau=tau) - math.log(1 / alpha)) > 1e-9)
    outside = result.ci_low > 0 or result.ci_high < 0
    assert outside == (result.p_value < alpha)
    assert outside == (result.shown_better() or result.shown_worse())


@settings(max_examples=100, deadline=None)
@given(arm, arm, alphas, taus)
def test_interval_contains_the_estimate_and_stays_in_bounds(
    a: ArmCounts, b: ArmCounts, alpha: float, tau: float
) -> None:
    result = two_sample(a, b, alpha=alpha, tau=tau)
    assert -1.0 <= result.ci_low <= result.estimate <= result.ci_high <= 1.0
    assert 0.0 <= result.p_value <= 1.0  # 0.0 only where 1/Lambda underflows


@settings(max_examples=100, deadline=None)
@given(arm, arm, alphas, st.floats(min_value=0.1, max_value=0.9), taus)
def test_interval_widens_when_alpha_shrinks(
    a: ArmCounts, b: ArmCounts, alpha: float, shrink: float, tau: float
) -> None:
    loose = two_sample(a, b, alpha=alpha, tau=tau)
    strict = two_sample(a, b, alpha=alpha * shrink, tau=tau)
    assert strict.ci_low <= loose.ci_low
    assert strict.ci_high >= loose.ci_high
    assert strict.p_value == loose.p_value  # the p-value does not depend on alpha


@settings(max_examples=100, deadline=None)
@given(arm, arm, alphas, taus)
def test_swapping_the_arms_negates_the_estimate_and_the_interval(
    a: ArmCounts, b: ArmCounts, alpha: float, tau: float
) -> None:
    forward = two_sample(a, b, alpha=alpha, tau=tau)
    backward = two_sample(b, a, alpha=alpha, tau=tau)
    assert backward.estimate == pytest.approx(-forward.estimate, abs=1e-12)
    assert backward.ci_low == pytest.approx(-forward.ci_high, abs=1e-12)
    assert backward.ci_high == pytest.approx(-forward.ci_low, abs=1e-12)
    assert backward.p_value == pytest.approx(forward.p_value, rel=1e-9)
    assert (backward.rate_a, backward.rate_b) == (forward.rate_b, forward.rate_a)


@settings(max_examples=100, deadline=None)
@given(counts, counts, counts, counts, alphas, taus)
def test_paired_swap_negates_the_interval(
    both: int, a_only: int, b_only: int, neither: int, alpha: float, tau: float
) -> None:
    forward = paired(both, a_only, b_only, neither, alpha=alpha, tau=tau)
    backward = paired(both, b_only, a_only, neither, alpha=alpha, tau=tau)
    assert backward.estimate == pytest.approx(-forward.estimate, abs=1e-12)
    assert backward.ci_low == pytest.approx(-forward.ci_high, abs=1e-12)
    assert backward.ci_high == pytest.approx(-forward.ci_low, abs=1e-12)
    assert forward.ci_low <= forward.estimate <= forward.ci_high


@settings(max_examples=100, deadline=None)
@given(counts, counts, counts, alphas, taus)
def test_paired_with_equal_discordant_counts_shows_no_difference(
    both: int, discordant: int, neither: int, alpha: float, tau: float
) -> None:
    result = paired(both, discordant, discordant, neither, alpha=alpha, tau=tau)
    assert result.estimate == 0.0
    assert not result.shown_better()
    assert not result.shown_worse()
    assert result.p_value == 1.0
    assert result.rate_a == result.rate_b


# --- degenerate inputs and validation ---------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [((0, 0), (500, 400)), ((500, 400), (0, 0)), ((0, 0), (0, 0))])
def test_an_arm_without_feedback_says_nothing(a: tuple[int, int], b: tuple[int, int]) -> None:
    result = two_sample(ArmCounts(*a), ArmCounts(*b))
    assert (result.ci_low, result.ci_high, result.p_value) == (-1.0, 1.0, 1.0)
    assert not result.shown_better() and not result.shown_worse() and not result.shown_non_inferior(0.05)
    assert None in (result.rate_a, result.rate_b)
    assert json.loads(json.dumps(result.to_dict()))["ci_low"] == -1.0
    empty = paired(0, 0, 0, 0)
    assert (empty.ci_low, empty.ci_high, empty.p_value, empty.rate_a) == (-1.0, 1.0, 1.0, None)


def test_all_successes_on_both_arms_keeps_a_real_interval() -> None:
    result = two_sample(ArmCounts(300, 300), ArmCounts(300, 300))
    assert result.estimate == 0.0
    assert result.ci_low < -0.01 and result.ci_high > 0.01  # no collapse to a zero-width interval
    assert result.p_value == 1.0


def test_a_handful_of_events_cannot_decide_even_at_the_extremes() -> None:
    result = two_sample(ArmCounts(5, 0), ArmCounts(5, 5))
    assert result.estimate == 1.0
    assert not result.shown_better()
    assert result.p_value > ALPHA
    paired_result = paired(0, 0, 8, 0)
    assert not paired_result.shown_better()


def test_margins_and_serialisation() -> None:
    result = two_sample(ArmCounts(20000, 17000), ArmCounts(20000, 17100))
    assert result.shown_non_inferior(0.02)
    assert not result.shown_better()
    assert not result.shown_worse()
    assert result.shown_better(margin=-0.02) == result.shown_non_inferior(0.02)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["design"] == "two-sample"
    assert "mSPRT" in data["test"] and "0.025" in data["test"]
    assert all(type(data[key]) is float for key in ("estimate", "ci_low", "ci_high", "p_value", "rate_a"))
    assert SequentialResult(**data) == result
    from_numpy = two_sample(ArmCounts(np.int64(400), np.int64(340)), ArmCounts(np.int64(400), np.int64(350)))  # type: ignore[arg-type]
    assert json.loads(json.dumps(from_numpy.to_dict()))["n_a"] == 400


@pytest.mark.parametrize(("n", "successes"), [(5, 6), (5, -1), (-1, 0)])
def test_impossible_arm_counts_are_refused(n: int, successes: int) -> None:
    with pytest.raises(ValueError, match="successes"):
        ArmCounts(n, successes)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"alpha": 0.0}, "alpha"), ({"alpha": 1.0}, "alpha"), ({"tau": 0.0}, "tau"), ({"previous_p": 1.5}, "previous_p")],
)
def test_bad_settings_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        two_sample(ArmCounts(10, 5), ArmCounts(10, 5), **kwargs)
    with pytest.raises(ValueError, match=message):
        paired(5, 1, 1, 3, **kwargs)
    with pytest.raises(ValueError, match="pair counts"):
        paired(5, -1, 1, 3)


# --- error rates under repeated looks (seeded simulations) ------------------------------------


def first_decision(successes_a: np.ndarray, successes_b: np.ndarray, looks: np.ndarray) -> tuple[str, int] | None:
    """Run the test at every look of one experiment, as a canary would; return the first decision."""
    p = 1.0
    for n, xa, xb in zip(looks, successes_a, successes_b, strict=True):
        result = two_sample(ArmCounts(int(n), int(xa)), ArmCounts(int(n), int(xb)), previous_p=p)
        p = result.p_value
        if result.shown_better():
            return "better", int(n)
        if result.shown_worse():
            return "worse", int(n)
    return None


def cumulative_successes(rng: np.random.Generator, rate: float, runs: int, looks: int) -> np.ndarray:
    return rng.binomial(STEP, rate, size=(runs, looks)).cumsum(axis=1)


def test_repeated_looks_at_an_a_a_test_keep_the_false_positive_rate_below_alpha() -> None:
    """1,000 A/A canaries at 85%, looked at after every 20 events per arm up to 3,000 (150 looks each).

    A fixed-horizon z-test at 1.96 looked at this often is wrong in about 40% of them. The
    mSPRT is conservative (its alpha bounds the error for continuous monitoring), so the true
    rate is well below alpha: we assert the observed rate <= alpha outright. With a true rate of
    at most ~2.5% the chance that 1,000 runs show more than 5% is below 1e-6, so this cannot
    fail by bad luck, yet it fails if the boundary is too narrow (e.g. a fixed-horizon z of 1.96).
    """
    rng = np.random.default_rng(20240611)
    runs, looks = 1000, np.arange(STEP, 3000 + 1, STEP)
    xa = cumulative_successes(rng, 0.85, runs, len(looks))
    xb = cumulative_successes(rng, 0.85, runs, len(looks))
    false_positives = sum(first_decision(xa[i], xb[i], looks) is not None for i in range(runs))
    assert false_positives / runs <= ALPHA


def test_repeated_looks_at_a_paired_a_a_test_keep_the_false_positive_rate_below_alpha() -> None:
    """500 shadow A/A runs (both right 80%, only A 5%, only B 5%, neither 10%), looks every 20 pairs to 3,000."""
    rng = np.random.default_rng(7)
    runs, looks = 500, np.arange(STEP, 3000 + 1, STEP)
    cells = rng.multinomial(STEP, [0.80, 0.05, 0.05, 0.10], size=(runs, len(looks))).cumsum(axis=1)
    false_positives = 0
    for i in range(runs):
        p = 1.0
        for both, a_only, b_only, neither in cells[i]:
            result = paired(int(both), int(a_only), int(b_only), int(neither), previous_p=p)
            p = result.p_value
            if result.shown_better() or result.shown_worse():
                false_positives += 1
                break
    assert false_positives / runs <= ALPHA


def test_a_real_three_point_gain_is_found_within_the_advertised_sample_size() -> None:
    """82% -> 85%: at least ``power`` of 400 canaries decide "B better" by ``sequential_sample_size``.

    The advertised size is a conservative bound (the chance of being past the boundary *at* n,
    ignoring earlier crossings), so the observed rate should exceed 0.8 comfortably. We allow
    0.05 of Monte Carlo slack below 0.8 (2.5 standard errors at 400 runs: if the true rate were
    exactly 0.8, P(observed < 0.75) is under 1%); a test that never
    decides, or decides later than advertised, fails. Decisions in the wrong direction must be
    rarer than alpha.
    """
    power, n_max = 0.8, sequential_sample_size(0.82, 0.03, power=0.8)
    rng = np.random.default_rng(99)
    runs, looks = 400, np.arange(STEP, n_max + 1, STEP)  # never looks past n_max
    xa = cumulative_successes(rng, 0.82, runs, len(looks))
    xb = cumulative_successes(rng, 0.85, runs, len(looks))
    decisions = [first_decision(xa[i], xb[i], looks) for i in range(runs)]
    better = sum(d is not None and d[0] == "better" for d in decisions)
    worse = sum(d is not None and d[0] == "worse" for d in decisions)
    assert better / runs >= power - 0.05
    assert worse / runs <= ALPHA
