"""Fairness of a classifier across the groups of one attribute (a metadata field such as
``region`` or ``airline``): per group, accuracy, the selection rate of each label and the
true-positive rate of each label; between groups, the gaps.

* **Demographic parity difference** of a label: the largest selection rate of that label in
  any group minus the smallest (how differently often each group is *given* the label).
* **Equal opportunity difference** of a label: the same spread of the true-positive rate
  (of the rows whose true label it is, the share the model gave it to, per group).

Every figure has its sample size (``n``: the rows it is a share of) and a percentile bootstrap
interval (``evaluation.bootstrap``): rows are resampled whole, and every figure, gap and the
paired comparison of two versions read the same resamples. A figure whose ``n`` is below
``min_n`` is reported with ``meaningful`` false and no interval (too few rows for one to mean
anything), and stays out of the gaps: a gap is taken only over the groups with enough rows
(for a true-positive rate, enough rows of that true label). A gap over fewer than two such
groups is not computed.

``compare_largest_gap`` pairs two versions on the same rows: the interval of (candidate's
largest gap - champion's largest gap), the largest gap being the maximum over every gap of
the field, recomputed on each resample. The gate (``evaluation.gate``) reads it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from learnloop.evaluation.bootstrap import FloatArray, percentile_interval, resample_weights

DEMOGRAPHIC_PARITY = "demographic_parity"
EQUAL_OPPORTUNITY = "equal_opportunity"


@dataclass(frozen=True)
class Estimate:
    """One figure: its value (None when it has no rows), the rows it is a share of, and its
    interval when ``n`` reaches the minimum (``meaningful``)."""

    value: float | None
    n: int
    low: float | None = None
    high: float | None = None
    meaningful: bool = False


@dataclass(frozen=True)
class GroupReport:
    group: str
    n: int
    accuracy: Estimate
    selection_rate: dict[str, Estimate]  # per label: share of the group's rows given the label
    true_positive_rate: dict[str, Estimate]  # per label: share of the group's rows of that label given it


@dataclass(frozen=True)
class Gap:
    metric: str  # demographic_parity | equal_opportunity
    label: str
    value: float
    low: float | None
    high: float | None
    highest: str  # the group with the largest rate
    lowest: str  # the group with the smallest
    groups: int  # groups the gap is taken over (those with enough rows)


@dataclass(frozen=True)
class FieldReport:
    field: str
    n: int  # rows that have the attribute
    min_n: int
    confidence: float
    groups: list[GroupReport]
    gaps: list[Gap]

    @property
    def largest(self) -> Gap | None:
        return max(self.gaps, key=lambda g: g.value, default=None)

    def to_dict(self) -> dict[str, Any]:
        largest = self.largest
        return {**asdict(self), "largest": None if largest is None else asdict(largest)}


class _Layout:
    """The indicator columns whose weighted sums give every figure: per group, its rows, its
    hits; per group and label, rows given the label, rows of that true label, and those given it."""

    def __init__(self, groups: Sequence[str], labels: Sequence[str]) -> None:
        self.groups = list(groups)
        self.labels = list(labels)
        g, lab = len(groups), len(labels)
        self.rows = np.arange(g) * (2 + 3 * lab)
        self.hits = self.rows + 1
        base = self.rows[:, None] + 2 + 3 * np.arange(lab)[None, :]
        self.given, self.truth, self.true_given = base, base + 1, base + 2
        self.width = g * (2 + 3 * lab)

    def columns(self, truth: npt.NDArray[Any], pred: npt.NDArray[Any], group_of: npt.NDArray[Any]) -> FloatArray:
        x = np.zeros((len(truth), self.width))
        for gi, group in enumerate(self.groups):
            in_group = group_of == group
            x[:, self.rows[gi]] = in_group
            x[:, self.hits[gi]] = in_group & (truth == pred)
            for li, label in enumerate(self.labels):
                x[:, self.given[gi, li]] = in_group & (pred == label)
                x[:, self.truth[gi, li]] = in_group & (truth == label)
                x[:, self.true_given[gi, li]] = in_group & (truth == label) & (pred == label)
        return x


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


class _Figures:
    """Every figure of one version from the column sums ``s`` (one row per resample)."""

    def __init__(self, layout: _Layout, s: FloatArray) -> None:
        self.accuracy = _ratio(s[:, layout.hits], s[:, layout.rows])  # (B, G)
        self.selection = _ratio(s[:, layout.given], s[:, layout.rows][:, :, None])  # (B, G, L)
        self.tpr = _ratio(s[:, layout.true_given], s[:, layout.truth])  # (B, G, L)


def _spread(rates: FloatArray, keep: npt.NDArray[np.bool_]) -> FloatArray:
    """Max minus min over the kept groups of ``rates`` (B, G); NaN where a resample lost one."""
    kept = rates[:, keep]
    with np.errstate(invalid="ignore"):
        return np.asarray(kept.max(axis=1) - kept.min(axis=1), dtype=np.float64)


class _Gaps:
    """Which gaps a field has (groups with enough rows, fixed on the data as observed, the same
    for every version) and their values on any resample."""

    def __init__(self, layout: _Layout, observed: FloatArray, min_n: int) -> None:
        self.layout = layout
        self.size_ok = observed[0, layout.rows] >= min_n  # (G,)
        self.truth_ok = (observed[0, layout.truth] >= min_n) & self.size_ok[:, None]  # (G, L)
        self.keys: list[tuple[str, int, npt.NDArray[np.bool_]]] = []
        for li in range(len(layout.labels)):
            if self.size_ok.sum() >= 2:
                self.keys.append((DEMOGRAPHIC_PARITY, li, self.size_ok))
            if self.truth_ok[:, li].sum() >= 2:
                self.keys.append((EQUAL_OPPORTUNITY, li, self.truth_ok[:, li]))

    def values(self, figures: _Figures) -> FloatArray:
        """(B, K): every gap on every resample."""
        out = [
            _spread(figures.selection[:, :, li] if metric == DEMOGRAPHIC_PARITY else figures.tpr[:, :, li], keep)
            for metric, li, keep in self.keys
        ]
        return np.stack(out, axis=1) if out else np.zeros((figures.accuracy.shape[0], 0))

    def largest(self, figures: _Figures) -> FloatArray:
        values = self.values(figures)
        if values.shape[1] == 0:
            return np.full(values.shape[0], np.nan)
        with np.errstate(invalid="ignore"):
            return np.asarray(values.max(axis=1), dtype=np.float64)


def _prepare(
    truth: Sequence[str], pred: Sequence[str], attributes: Sequence[Any], labels: Sequence[str]
) -> tuple[_Layout, npt.NDArray[np.intp], npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]:
    """The rows that have the attribute (a scalar value; None and missing are left out), as arrays."""
    if not len(truth) == len(pred) == len(attributes):
        raise ValueError(f"rows differ in length: {len(truth)}, {len(pred)}, {len(attributes)}")
    rows = np.asarray([i for i, a in enumerate(attributes) if a is not None and not isinstance(a, dict | list)])
    rows = rows.astype(np.intp)
    group_of = np.asarray([str(attributes[i]) for i in rows], dtype=object)
    groups = sorted(set(group_of.tolist()))
    layout = _Layout(groups, labels)
    t = np.asarray([str(truth[i]) for i in rows], dtype=object)
    p = np.asarray([str(pred[i]) for i in rows], dtype=object)
    return layout, rows, group_of, t, p


def _sums(weights_batches: list[FloatArray], x: FloatArray) -> FloatArray:
    return np.concatenate([w @ x for w in weights_batches]) if weights_batches else np.zeros((0, x.shape[1]))


def fairness_report(
    field: str,
    truth: Sequence[str],
    pred: Sequence[str],
    attributes: Sequence[Any],
    labels: Sequence[str],
    *,
    min_n: int = 30,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> FieldReport:
    """Per group figures and the gaps between groups of one attribute (module doc).
    ``attributes[i]`` is row ``i``'s value of the field (None: the row does not have it)."""
    layout, _, group_of, t, p = _prepare(truth, pred, attributes, labels)
    n = len(t)
    x = layout.columns(t, p, group_of)
    observed = np.ones((1, n)) @ x
    gaps = _Gaps(layout, observed, min_n)
    point = _Figures(layout, observed)
    with threadpool_limits(limits=1, user_api="blas"):
        sums = _sums(list(resample_weights(n, resamples, seed)) if n else [], x)
    boot = _Figures(layout, sums)

    def estimate(value: float, count: float, draws: FloatArray) -> Estimate:
        finite = bool(np.isfinite(value))
        meaningful = bool(finite and count >= min_n)
        interval = percentile_interval(draws, confidence) if meaningful and draws.size else None
        return Estimate(
            value=float(value) if finite else None,
            n=int(count),
            low=None if interval is None else interval[0],
            high=None if interval is None else interval[1],
            meaningful=meaningful,
        )

    reports = []
    for gi, group in enumerate(layout.groups):
        size = observed[0, layout.rows[gi]]
        reports.append(
            GroupReport(
                group=group,
                n=int(size),
                accuracy=estimate(point.accuracy[0, gi], size, boot.accuracy[:, gi]),
                selection_rate={
                    lab: estimate(point.selection[0, gi, li], size, boot.selection[:, gi, li])
                    for li, lab in enumerate(labels)
                },
                true_positive_rate={
                    lab: estimate(point.tpr[0, gi, li], observed[0, layout.truth[gi, li]], boot.tpr[:, gi, li])
                    for li, lab in enumerate(labels)
                },
            )
        )
    values, draws = gaps.values(point), gaps.values(boot)
    gap_list = []
    for k, (metric, li, keep) in enumerate(gaps.keys):
        rates = (point.selection if metric == DEMOGRAPHIC_PARITY else point.tpr)[0, :, li]
        kept = [gi for gi in range(len(layout.groups)) if keep[gi]]
        interval = percentile_interval(draws[:, k], confidence) if draws.size else None
        gap_list.append(
            Gap(
                metric=metric,
                label=labels[li],
                value=float(values[0, k]),
                low=None if interval is None else interval[0],
                high=None if interval is None else interval[1],
                highest=layout.groups[max(kept, key=lambda gi: rates[gi])],
                lowest=layout.groups[min(kept, key=lambda gi: rates[gi])],
                groups=len(kept),
            )
        )
    return FieldReport(field=field, n=n, min_n=min_n, confidence=confidence, groups=reports, gaps=gap_list)


@dataclass(frozen=True)
class GapComparison:
    """The largest gap of a field under each version on the same rows, and the paired interval
    of their difference (candidate - champion): positive means the candidate widens it."""

    field: str
    n: int
    groups: int  # groups with enough rows (at least min_n)
    champion: float | None
    candidate: float | None
    difference: float | None
    low: float | None
    high: float | None
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_largest_gap(
    field: str,
    truth: Sequence[str],
    champion_pred: Sequence[str],
    candidate_pred: Sequence[str],
    attributes: Sequence[Any],
    labels: Sequence[str],
    *,
    min_n: int = 30,
    resamples: int = 1000,
    confidence: float = 0.90,
    seed: int = 0,
) -> GapComparison:
    """Paired bootstrap of (candidate's largest gap - champion's): both read the same resampled rows."""
    layout, rows, group_of, t, a = _prepare(truth, champion_pred, attributes, labels)
    b = np.asarray([str(candidate_pred[i]) for i in rows], dtype=object)
    n = len(t)
    xa, xb = layout.columns(t, a, group_of), layout.columns(t, b, group_of)
    ones = np.ones((1, n))
    gaps = _Gaps(layout, ones @ xa, min_n)
    groups = int(gaps.size_ok.sum())
    if not gaps.keys:
        return GapComparison(field, n, groups, None, None, None, None, None, confidence)
    champion = float(gaps.largest(_Figures(layout, ones @ xa))[0])
    candidate = float(gaps.largest(_Figures(layout, ones @ xb))[0])
    with threadpool_limits(limits=1, user_api="blas"):
        weights = list(resample_weights(n, resamples, seed))
        diff = gaps.largest(_Figures(layout, _sums(weights, xb))) - gaps.largest(_Figures(layout, _sums(weights, xa)))
    interval = percentile_interval(diff, confidence)
    return GapComparison(
        field=field,
        n=n,
        groups=groups,
        champion=champion,
        candidate=candidate,
        difference=candidate - champion,
        low=None if interval is None else interval[0],
        high=None if interval is None else interval[1],
        confidence=confidence,
    )


def field_values(metadata: Sequence[Mapping[str, Any] | None], field: str) -> list[Any]:
    """Each row's value of ``field`` (None where its metadata lacks it)."""
    return [(meta or {}).get(field) for meta in metadata]
