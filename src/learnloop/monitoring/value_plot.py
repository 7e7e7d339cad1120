"""Cumulative cost against cumulative value across retrains, as a PNG (``learnloop value --plot``)."""

from __future__ import annotations

import io

from learnloop.monitoring.value import ValueReport

_COST, _VALUE, _NOTHING = "#d97706", "#2166ac", "#d73027"


def value_png(report: ValueReport) -> bytes:
    """One panel in money when the policy sets prices; else two (CPU seconds; ``unit`` gained)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    points = report.cumulative()
    xs = [f"v{p.version}" for p in points]
    nothing = [i for i, r in enumerate(report.retrains) if r.bought_nothing]
    panels = 1 if report.priced else 2
    fig, axes = plt.subplots(panels, 1, figsize=(9, 3.2 * panels), squeeze=False, layout="constrained")
    cost_ax, value_ax = axes[0, 0], axes[-1, 0]
    cost_ax.plot(xs, [p.cost for p in points], color=_COST, marker="o", ms=4, label="cost (cumulative)")
    cost_ax.scatter([xs[i] for i in nothing], [points[i].cost for i in nothing], color=_NOTHING, s=40, zorder=3,
                    label="bought nothing")  # fmt: skip
    value_ax.axhline(0, color="#888888", lw=0.8)
    value_ax.plot(xs, [p.value for p in points], color=_VALUE, marker="o", ms=4, label="value (cumulative)")
    value_ax.fill_between(xs, [p.value_low for p in points], [p.value_high for p in points], color=_VALUE,
                          alpha=0.2, label="95% interval (approximate)")  # fmt: skip
    if report.priced:
        cost_ax.set_ylabel("money")
    else:
        cost_ax.set_ylabel("CPU seconds")
        value_ax.set_ylabel(report.unit)
    for ax in {cost_ax, value_ax}:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    value_ax.set_xlabel("retrain (version)")
    fig.suptitle(f"{report.model}: cumulative cost and value of retrains")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
