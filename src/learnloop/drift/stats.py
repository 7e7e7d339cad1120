"""The statistics the drift detectors share: PSI, a two-sample KS test against a stored quantile
sketch, the chi-squared test of homogeneity with its effect sizes, tokenizing, and a Bloom filter.

Each function is pure (no input is modified) and returns plain Python numbers or numpy arrays.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

PSI_EPSILON = 1e-4
"""Shares below this are raised to it before PSI takes logarithms (an empty bin would be infinite)."""

TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")
"""scikit-learn's default ``token_pattern``: the words a TF-IDF model's vocabulary is made of."""


def tokenize(text: str) -> list[str]:
    """Lower-cased words of two or more characters, as scikit-learn's vectorizers see them."""
    return TOKEN_PATTERN.findall(text.lower())


# -- population stability index -------------------------------------------------------------


def psi_terms(reference_share: FloatArray, window_share: FloatArray, epsilon: float = PSI_EPSILON) -> FloatArray:
    """Per-bin PSI terms ``(w - r) * ln(w / r)``, both shares clipped below at ``epsilon``."""
    r = np.clip(np.asarray(reference_share, dtype=np.float64), epsilon, None)
    w = np.clip(np.asarray(window_share, dtype=np.float64), epsilon, None)
    terms: FloatArray = (w - r) * np.log(w / r)
    return terms


def psi(reference_share: FloatArray, window_share: FloatArray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index; 0 for identical shares, >= 0 always."""
    return float(psi_terms(reference_share, window_share, epsilon).sum())


def quantile_edges(values: FloatArray, bins: int) -> list[float]:
    """Inner bin edges at the reference's quantiles (duplicates from ties dropped).

    Bins are ``(-inf, e0], (e0, e1], ..., (e_last, inf)``, so each holds about ``1/bins`` of
    the reference unless ties make that impossible."""
    if values.size == 0:
        return []
    inner = np.quantile(values, np.arange(1, bins) / bins, method="inverted_cdf")
    edges = np.unique(inner)
    # a top edge equal to the maximum would leave the last bin empty in the reference
    edges = edges[edges < values.max()]
    return [float(e) for e in edges]


def bin_shares(values: FloatArray, edges: Sequence[float]) -> FloatArray:
    """Share of ``values`` in each bin defined by ``edges`` (see ``quantile_edges``)."""
    counts = np.bincount(
        np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left"), minlength=len(edges) + 1
    ).astype(np.float64)
    total = counts.sum()
    shares: FloatArray = counts / total if total > 0 else counts
    return shares


# -- Kolmogorov-Smirnov against a quantile sketch ---------------------------------------------


def quantile_sketch(values: FloatArray, size: int) -> tuple[list[float], bool]:
    """The sorted values themselves when there are at most ``size`` (``exact`` True), else the
    ``size`` quantiles at ``(i + 0.5) / size``: an empirical CDF within ``1 / size`` of the true one."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    if ordered.size <= size:
        return [float(v) for v in ordered], True
    probs = (np.arange(size) + 0.5) / size
    return [float(v) for v in np.quantile(ordered, probs, method="inverted_cdf")], False


def ks_statistic(reference_sorted: FloatArray, window: FloatArray) -> float:
    """sup |F_ref - F_win| over both samples' points (each sketch point weighs ``1 / len``)."""
    window_sorted = np.sort(window)
    points = np.concatenate([reference_sorted, window_sorted])
    f_ref = np.searchsorted(reference_sorted, points, side="right") / reference_sorted.size
    f_win = np.searchsorted(window_sorted, points, side="right") / window_sorted.size
    return float(np.max(np.abs(f_ref - f_win)))


def ks_test(sketch: Sequence[float], exact: bool, n_reference: int, window: FloatArray) -> tuple[float, float]:
    """Two-sided two-sample KS: statistic and p-value.

    With the whole reference stored (``exact``) this is ``scipy.stats.ks_2samp``. Against a
    sketch, the statistic comes from the sketch's CDF and the p-value from the asymptotic
    distribution scipy itself uses for large samples, ``kstwo(round(n m / (n + m)))``, with the
    true reference size ``n``."""
    from scipy import stats

    reference = np.asarray(sketch, dtype=np.float64)
    values = np.asarray(window, dtype=np.float64)
    if exact:
        result = stats.ks_2samp(reference, values)
        return float(result.statistic), float(result.pvalue)
    d = ks_statistic(reference, values)
    m = values.size
    en = round(n_reference * m / (n_reference + m))
    return d, float(np.clip(stats.kstwo.sf(d, max(en, 1)), 0.0, 1.0))


# -- label counts ------------------------------------------------------------------------------


def chi2_homogeneity(reference_counts: Sequence[int], window_counts: Sequence[int]) -> tuple[float, float, int]:
    """Chi-squared test that two count vectors come from one distribution (no continuity
    correction): statistic, p-value, degrees of freedom. Categories empty on both sides are
    dropped; a category the reference never shows still counts (its expected cell is pooled)."""
    table = np.array([reference_counts, window_counts], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0, 0
    from scipy import stats

    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue), int(result.dof)


def cramers_v(chi2: float, n: int, n_rows: int, n_columns: int) -> float:
    """Cramér's V = sqrt(chi2 / (n (min(r, c) - 1)))."""
    denominator = n * (min(n_rows, n_columns) - 1)
    return math.sqrt(chi2 / denominator) if denominator > 0 else 0.0


def total_variation(p: FloatArray, q: FloatArray) -> float:
    """Half the L1 distance between two distributions: the share of mass that has to move."""
    return 0.5 * float(np.abs(np.asarray(p, dtype=np.float64) - np.asarray(q, dtype=np.float64)).sum())


# -- Bloom filter ------------------------------------------------------------------------------


def _hash_pairs(items: Iterable[str]) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    digests = b"".join(hashlib.blake2b(item.encode("utf-8"), digest_size=16).digest() for item in items)
    words = np.frombuffer(digests, dtype="<u8").reshape(-1, 2)
    return words[:, 0].copy(), words[:, 1] | np.uint64(1)


class BloomFilter:
    """A set of strings in ``2**log2_bits`` bits with ``hashes`` hash functions (Kirsch-Mitzenmacher
    double hashing on BLAKE2b). Members are always found; a non-member is found with the
    probability ``false_positive_rate``."""

    def __init__(self, log2_bits: int, hashes: int, bits: npt.NDArray[np.uint8] | None = None, count: int = 0):
        self.log2_bits = log2_bits
        self.hashes = hashes
        self.count = count
        self._bits = np.zeros(1 << log2_bits, dtype=np.uint8) if bits is None else bits

    @classmethod
    def sized_for(cls, n_items: int, max_log2_bits: int) -> BloomFilter:
        """About 10 bits per item (1% false positives) up to ``2**max_log2_bits`` bits."""
        log2_bits = min(max(10, math.ceil(math.log2(max(n_items, 1) * 10))), max_log2_bits)
        hashes = min(8, max(1, round((1 << log2_bits) / max(n_items, 1) * math.log(2))))
        return cls(log2_bits, hashes)

    def _positions(self, items: Sequence[str]) -> npt.NDArray[np.uint64]:
        h1, h2 = _hash_pairs(items)
        steps = np.arange(self.hashes, dtype=np.uint64)
        mask = np.uint64((1 << self.log2_bits) - 1)
        positions: npt.NDArray[np.uint64] = (h1[:, None] + steps[None, :] * h2[:, None]) & mask
        return positions

    def add_many(self, items: Sequence[str]) -> None:
        if items:
            self._bits[self._positions(items).ravel()] = 1
            self.count += len(items)

    def contains_many(self, items: Sequence[str]) -> npt.NDArray[np.bool_]:
        if not items:
            return np.zeros(0, dtype=bool)
        found = np.asarray(self._bits[self._positions(items)].all(axis=1), dtype=bool)
        return found

    @property
    def false_positive_rate(self) -> float:
        return float(self._bits.mean()) ** self.hashes

    def to_dict(self) -> dict[str, Any]:
        packed = zlib.compress(np.packbits(self._bits).tobytes(), 9)
        return {
            "log2_bits": self.log2_bits,
            "hashes": self.hashes,
            "count": self.count,
            "bits": base64.b64encode(packed).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BloomFilter:
        log2_bits = int(data["log2_bits"])
        raw = np.frombuffer(zlib.decompress(base64.b64decode(data["bits"])), dtype=np.uint8)
        bits = np.unpackbits(raw)[: 1 << log2_bits].copy()
        return cls(log2_bits, int(data["hashes"]), bits, int(data["count"]))


# -- one number per item: KS on a sketch + PSI on reference-quantile bins ------------------------

SKETCH_SIZE = 1000
PSI_BINS = 10


def univariate_summary(values: FloatArray, *, bins: int = PSI_BINS, sketch_size: int = SKETCH_SIZE) -> dict[str, Any]:
    """What a KS test and a PSI need of a reference: a quantile sketch, bin edges and shares."""
    sketch, exact = quantile_sketch(values, sketch_size)
    edges = quantile_edges(values, bins)
    return {
        "sketch": sketch,
        "sketch_exact": exact,
        "edges": edges,
        "reference_share": [float(s) for s in bin_shares(values, edges)],
        "reference_mean": float(values.mean()) if values.size else None,
        "reference_median": float(np.median(values)) if values.size else None,
    }


def compare_univariate(
    summary: Mapping[str, Any], n_reference: int, values: FloatArray
) -> tuple[float, float, float, dict[str, Any]]:
    """KS statistic, KS p-value, PSI and the per-bin detail of ``values`` against a summary."""
    d, p = ks_test(summary["sketch"], bool(summary["sketch_exact"]), n_reference, values)
    reference_share = np.asarray(summary["reference_share"], dtype=np.float64)
    window_share = bin_shares(values, summary["edges"])
    terms = psi_terms(reference_share, window_share)
    detail = {
        "edges": list(summary["edges"]),
        "reference_share": reference_share.tolist(),
        "window_share": window_share.tolist(),
        "psi_per_bin": terms.tolist(),
        "psi_epsilon": PSI_EPSILON,
        "reference_mean": summary["reference_mean"],
        "window_mean": float(values.mean()),
        "reference_median": summary["reference_median"],
        "window_median": float(np.median(values)),
        "ks_statistic": d,
        "reference_sketch_exact": bool(summary["sketch_exact"]),
    }
    return d, p, float(terms.sum()), detail
