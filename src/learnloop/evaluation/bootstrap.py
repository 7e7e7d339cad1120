"""Percentile bootstrap over examples, written with resample weights.

A ``Statistic`` here is a function of per-example weights: given ``weights`` of shape
``(resamples, n)``, where ``weights[b, i]`` counts how often example ``i`` was drawn in
resample ``b``, it returns one value per resample. Written that way a mean is one matrix
product, every metric of a report reads the same resamples, a paired comparison applies the
same weights to both sides, and ``np.ones((1, n))`` gives the estimate on the data as observed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

FloatArray = npt.NDArray[np.float64]
Statistic = Callable[[FloatArray], FloatArray]
Interval = tuple[float, float]

# Resamples are drawn in batches of about this many (resample, example) cells: arrays that
# stay in cache (2 MB of float64) run several times faster than one large batch, and a large
# evaluation set costs time, not memory.
_CELLS_PER_BATCH = 250_000


def resample_weights(n: int, resamples: int, seed: int) -> Iterator[FloatArray]:
    """Batches of bootstrap weights, ``(batch, n)`` each, ``resamples`` rows in all."""
    rng = np.random.default_rng(seed)
    batch = max(1, _CELLS_PER_BATCH // max(n, 1))
    done = 0
    while done < resamples:
        size = min(batch, resamples - done)
        draws = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
        yield np.bincount(draws.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)
        done += size


def percentile_interval(values: FloatArray, confidence: float = 0.95) -> Interval | None:
    """The central ``confidence`` interval of the finite ``values``; None if there are none.

    A resample on which a statistic is undefined (an AUC drawn with a single class) gives NaN
    and is left out."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    tail = (1 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return float(low), float(high)


def bootstrap_cis(
    statistics: Mapping[str, Statistic],
    n: int,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval | None]:
    """Percentile bootstrap intervals of several statistics, all read on the same resamples."""
    if n == 0 or resamples <= 0:
        return dict.fromkeys(statistics)
    parts: dict[str, list[FloatArray]] = {name: [] for name in statistics}
    # The products here are small and memory-bound: BLAS threads only add overhead (2x slower
    # on 2 cores with another process busy).
    with threadpool_limits(limits=1, user_api="blas"):
        for weights in resample_weights(n, resamples, seed):
            for name, statistic in statistics.items():
                parts[name].append(np.asarray(statistic(weights), dtype=np.float64))
    return {name: percentile_interval(np.concatenate(values), confidence) for name, values in parts.items()}


def bootstrap_ci(
    statistic: Statistic,
    n: int,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval | None:
    """Percentile bootstrap interval of one statistic over ``n`` examples."""
    return bootstrap_cis({"value": statistic}, n, resamples=resamples, confidence=confidence, seed=seed)["value"]


def paired_bootstrap_diff_cis(
    pairs: Mapping[str, tuple[Statistic, Statistic]],
    n: int,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval | None]:
    """Intervals of ``b - a`` for each named pair ``(a, b)``: both statistics of a pair read the
    same resampled examples (a paired bootstrap), and every pair reads the same resamples."""

    def difference(a: Statistic, b: Statistic) -> Statistic:
        return lambda weights: b(weights) - a(weights)

    differences = {name: difference(a, b) for name, (a, b) in pairs.items()}
    return bootstrap_cis(differences, n, resamples=resamples, confidence=confidence, seed=seed)


def two_sample_mean_diff_ci(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval | None:
    """Interval of ``mean(b) - mean(a)`` for two *independent* samples (two versions' answers
    on different traffic): each sample is resampled on its own, and the differences of the
    resampled means give the percentile interval. None if either sample is empty."""
    first, second = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if first.size == 0 or second.size == 0 or resamples <= 0:
        return None

    def means(values: FloatArray, stream: int) -> FloatArray:
        statistic = mean_statistic(values)
        return np.concatenate([statistic(w) for w in resample_weights(values.size, resamples, stream)])

    with threadpool_limits(limits=1, user_api="blas"):
        return percentile_interval(means(second, seed + 1) - means(first, seed), confidence)


def mean_statistic(values: npt.ArrayLike) -> Statistic:
    """The weighted mean of per-example ``values`` (accuracy from 0/1 hits, log loss, Brier)."""
    column = np.asarray(values, dtype=np.float64)

    def mean(weights: FloatArray) -> FloatArray:
        return np.asarray((weights @ column) / weights.sum(axis=1), dtype=np.float64)

    return mean


def ratio_statistic(numerators: npt.ArrayLike, denominators: npt.ArrayLike) -> Statistic:
    """The ratio of weighted sums, ``sum(w * num) / sum(w * den)``: a per-unit mean over
    examples of different sizes (NLL per token over responses of different lengths), each
    example resampled whole."""
    num = np.asarray(numerators, dtype=np.float64)
    den = np.asarray(denominators, dtype=np.float64)

    def ratio(weights: FloatArray) -> FloatArray:
        return np.asarray((weights @ num) / (weights @ den), dtype=np.float64)

    return ratio
