"""Fairness gaps per version as a PNG (``learnloop fairness --plot``): one panel per field, each
version's largest demographic parity and equal opportunity difference with its bootstrap
interval, versions in order along the x axis."""

from __future__ import annotations

import io

from learnloop.evaluation.fairness import DEMOGRAPHIC_PARITY, EQUAL_OPPORTUNITY
from learnloop.monitoring.fairness import FairnessReport

_COLOURS = {DEMOGRAPHIC_PARITY: "#2563eb", EQUAL_OPPORTUNITY: "#d97706"}
_NAMES = {DEMOGRAPHIC_PARITY: "demographic parity difference", EQUAL_OPPORTUNITY: "equal opportunity difference"}


def fairness_png(report: FairnessReport) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    versions = sorted(report.versions, key=lambda v: v.version)
    fields = report.fields or ["(no field)"]
    fig, axes = plt.subplots(len(fields), 1, figsize=(9, 2.6 * len(fields) + 0.8), squeeze=False, layout="constrained")
    for ax, name in zip(axes[:, 0], fields, strict=True):
        drawn = False
        for k, metric in enumerate((DEMOGRAPHIC_PARITY, EQUAL_OPPORTUNITY)):
            xs, ys, errors = [], [], []
            for v in versions:
                field = next((f for f in v.fields if f.field == name), None)
                gaps = [g for g in (field.gaps if field else []) if g.metric == metric]
                if not gaps:
                    continue
                top = max(gaps, key=lambda g: g.value)
                xs.append(v.version + (k - 0.5) * 0.12)
                ys.append(100 * top.value)
                low, high = (
                    top.low if top.low is not None else top.value,
                    top.high if top.high is not None else top.value,
                )
                errors.append((100 * max(top.value - low, 0), 100 * max(high - top.value, 0)))
            if xs:
                drawn = True
                ax.errorbar(
                    xs, ys, yerr=list(zip(*errors, strict=True)), fmt="o-", capsize=3, color=_COLOURS[metric],
                    label=_NAMES[metric],
                )  # fmt: skip
        if drawn:
            ax.legend(fontsize=8, loc="best")
            ax.set_ylim(bottom=0)
        else:
            ax.text(0.5, 0.5, "no gap: fewer than two groups with enough rows", ha="center", va="center")
        ax.set_title(f"{report.model}: largest gap between groups of {name}", loc="left", fontsize=10)
        ax.set_ylabel("gap (points)")
        ax.set_xticks([v.version for v in versions], [f"v{v.version}\nn={v.n}" for v in versions])
        if versions:  # half a version either side: one version's two dodged points would sit on the edges
            ax.set_xlim(min(v.version for v in versions) - 0.5, max(v.version for v in versions) + 0.5)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel(f"version (labelled answers); bars: {report.confidence:.0%} bootstrap intervals")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
