"""Drift over time as a PNG: one panel per detector, its effect size at each check against its
threshold (dashed), checks that alarmed in red and the first check of a new version dotted."""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from typing import Any

from learnloop.domain import DriftCheck

_OK, _DRIFT, _VERSION = "#2166ac", "#d73027", "#888888"


def drift_history_png(checks: Sequence[DriftCheck], *, title: str) -> bytes:
    """The checks (any order) as a PNG; detectors in the order the newest check lists them."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ordered = sorted(checks, key=lambda c: c.id)
    detectors = _detectors(ordered)
    rows = max(len(detectors), 1)
    fig, axes = plt.subplots(rows, 1, figsize=(10, 1.9 * rows + 0.9), sharex=True, squeeze=False, layout="constrained")
    times = [c.created_at for c in ordered]
    for ax, detector in zip(axes[:, 0], detectors, strict=False):
        results = [_result(c, detector) for c in ordered]
        points = [(t, r) for t, r in zip(times, results, strict=True) if r is not None and r["effect_size"] is not None]
        if points:
            xs, found = zip(*points, strict=True)
            ax.plot(xs, [r["effect_size"] for r in found], color=_OK, lw=1.4, marker="o", ms=3.5, zorder=3)
            alarms = [(t, r["effect_size"]) for t, r in points if r["drifted"]]
            if alarms:
                ax.scatter(*zip(*alarms, strict=True), color=_DRIFT, s=36, zorder=4)
            threshold = found[-1]["effect_threshold"]
            ax.axhline(threshold, color=_DRIFT, ls="--", lw=1, zorder=2)
            label = f" {threshold:g}"
            ax.text(1.0, threshold, label, color=_DRIFT, fontsize=8, va="center", transform=ax.get_yaxis_transform())
            ax.set_ylabel(found[-1]["effect"], fontsize=8)
        else:
            ax.text(0.5, 0.5, "not enough data in any check", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(detector, loc="left", fontsize=10)
        for previous, check in itertools.pairwise(ordered):
            if check.version != previous.version:
                ax.axvline(check.created_at, color=_VERSION, ls=":", lw=1)
        ax.grid(alpha=0.3)
    if not detectors:
        axes[0, 0].text(0.5, 0.5, "no check with a drift reference yet", ha="center", va="center")
    axes[-1, 0].set_xlabel("check time (UTC); red: drift; dashed: threshold; dotted: a new version")
    fig.suptitle(title)
    fig.autofmt_xdate()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _detectors(checks: Sequence[DriftCheck]) -> list[str]:
    seen: dict[str, None] = {}
    for check in reversed(checks):
        for r in check.results:
            seen.setdefault(r["detector"])
    return list(seen)


def _result(check: DriftCheck, detector: str) -> dict[str, Any] | None:
    return next((r for r in check.results if r["detector"] == detector), None)
