"""The learning curve of a replay, as a PNG and as a self-contained HTML page.

Top panel: trailing-window accuracy of the loop, the static model and the oracle over the
stream, segments shaded and named, with promotions, rejected candidates and rollbacks marked
where they took effect. Bottom panel: the version serving each item and the labelled
feedback sent so far.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from learnloop.replay.report import Trace, naive_sentence, trailing_accuracy

PAGE_STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
td, th { border: 1px solid #ddd; padding: .3rem .6rem; text-align: left; vertical-align: top; font-size: .9rem; }
th { background: #f6f6f6; }
svg { width: 100%; height: auto; }
</style>"""  # the report pages' look (the generation replay's too)
_MARKERS = {
    "promoted": ("^", "#1a9850", "promoted"),
    "candidate_rejected": ("x", "#d73027", "candidate rejected"),
    "rolled_back": ("D", "#f46d43", "rolled back"),
}


def _figure(
    trace: Trace, static: list[str], oracle: list[str], window: int, title: str, naive: list[str] | None = None
) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    truth = np.asarray(trace.truth, dtype=object)
    x = np.arange(1, truth.size + 1)
    curves = {
        "oracle (every true label)": (np.asarray(oracle, dtype=object) == truth, "#7b3294", "--"),
        "learnloop": (np.asarray(trace.served, dtype=object) == truth, "#2166ac", "-"),
        "static (never retrained)": (np.asarray(static, dtype=object) == truth, "#888888", "-"),
    }
    if naive is not None:
        curves["naive (every label, no gate)"] = (np.asarray(naive, dtype=object) == truth, "#e08214", "-.")
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(11, 6.8), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]}, layout="constrained"
    )
    for i, seg in enumerate(trace.segments):
        if i % 2:
            ax.axvspan(seg.start, seg.stop, color="#f0f0f0", zorder=0)
            ax2.axvspan(seg.start, seg.stop, color="#f0f0f0", zorder=0)
        ax.text(
            (seg.start + seg.stop) / 2,
            1.005,
            seg.name,
            ha="center",
            va="bottom",
            fontsize=9,
            transform=ax.get_xaxis_transform(),
        )
    if trace.post_shift_start > 0:
        ax.axvline(trace.post_shift_start, color="black", lw=1, ls=":")
    warmup = min(window // 2, max(truth.size - 1, 0))  # a window of a few items says nothing
    low = 1.0 if truth.size > window else 0.5  # the lowest full-window accuracy sets the y range
    for z, (label, (correct, color, style)) in enumerate(curves.items()):
        curve = trailing_accuracy(correct, window)
        if truth.size > window:
            low = min(low, float(curve[window:].min()))
        curve[:warmup] = np.nan
        ax.plot(
            x,
            curve,
            color=color,
            ls=style,
            lw=2.0 if label == "learnloop" else 1.4,
            label=label,
            zorder=5 if label == "learnloop" else 2 + z,
        )
    ax.set_ylim(max(0.0, low - 0.08), 1.02)
    seen: set[str] = set()
    for event in trace.events:
        if event.kind not in _MARKERS:
            continue
        marker, color, name = _MARKERS[event.kind]
        item = min(trace.item_at(event.at), truth.size - 1)
        ax.scatter(
            [item + 1],
            [ax.get_ylim()[0] + 0.02],
            marker=marker,
            color=color,
            s=60,
            zorder=5,
            label=None if name in seen else name,
            clip_on=False,
        )
        seen.add(name)
    ax.set_ylabel(f"accuracy (last {window} items)")
    fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", fontsize=8, ncol=6, frameon=False)
    ax2.step(x, trace.versions, where="post", color="#2166ac", lw=1.4)
    ax2.set_ylabel("serving version")
    top = max(trace.versions, default=1)
    ax2.yaxis.set_major_locator(MaxNLocator(nbins=min(top, 8), integer=True, min_n_ticks=1))
    ax2.set_ylim(0.5, top + 0.5)
    labels = np.zeros(truth.size)
    np.add.at(labels, np.asarray(trace.feedback_sent, dtype=int), 1)
    twin = ax2.twinx()
    twin.plot(x, np.cumsum(labels), color="#999999", lw=1, ls="--")
    twin.set_ylabel("feedback sent", color="#777777")
    ax2.set_xlabel("stream item")
    ax2.grid(alpha=0.3)
    return fig


def write_learning_curve(
    trace: Trace,
    static: list[str],
    oracle: list[str],
    summary: dict[str, Any],
    out: Path,
    *,
    window: int,
    title: str,
    naive: list[str] | None = None,
) -> tuple[Path, Path]:
    """Write ``learning_curve.png`` and ``report.html`` into ``out``; returns their paths."""
    fig = _figure(trace, static, oracle, window, title, naive)
    return write_figure_and_page(fig, out, lambda svg: _html(title, svg, summary))


def write_figure_and_page(fig: Any, out: Path, page_of: Callable[[str], str]) -> tuple[Path, Path]:
    """``fig`` as ``learning_curve.png`` and ``report.html`` (``page_of`` the figure's SVG text)
    in ``out``, the figure closed; returns their paths. Every replay writes its report so."""
    import matplotlib.pyplot as plt

    png = out / "learning_curve.png"
    fig.savefig(png, dpi=120)
    svg = io.StringIO()
    fig.savefig(svg, format="svg")
    plt.close(fig)
    page = out / "report.html"
    page.write_text(page_of(svg.getvalue()), encoding="utf-8")
    return png, page


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _html(title: str, svg: str, summary: dict[str, Any]) -> str:
    svg = svg[svg.find("<svg") :]
    rows = []
    shown = [k for k in ("static", "naive", "loop", "oracle") if k in summary["post_shift"]]
    for seg in summary["segments"]:
        cells = [html.escape(seg["name"]), str(seg["stop"] - seg["start"]), str(seg["labels_sent"])]
        cells += [_pct(seg[k]["accuracy"]) for k in shown]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    retrains = []
    for r in summary["retrains"]:
        reasons = "<br>".join(html.escape(str(x)) for x in r["reasons"])
        retrains.append(
            f"<tr><td>{r['trigger_item']}</td><td>{r['version'] or '-'}</td>"
            f"<td>{html.escape(str(r['decision']))}</td><td>{reasons}</td></tr>"
        )
    cmp = summary["loop_vs_static"]
    gain = cmp["relative_gain"]
    relative = "-" if gain is None else f"{100 * gain:+.1f}% relative"
    headline = (
        f"After the shift ({summary['post_shift_items']} items): loop "
        f"{_pct(summary['post_shift']['loop']['accuracy'])} vs static "
        f"{_pct(summary['post_shift']['static']['accuracy'])} "
        f"({relative}, {html.escape(cmp['test'])}: p={cmp['p_value']:.2g}); oracle "
        f"{_pct(summary['post_shift']['oracle']['accuracy'])}."
    )
    if "loop_vs_naive" in summary:
        headline += " " + html.escape(naive_sentence(summary["loop_vs_naive"]))
    names = {"static": "static", "naive": "naive", "loop": "learnloop", "oracle": "oracle"}
    heads = "".join(f"<th>{names[k]}</th>" for k in shown)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
{PAGE_STYLE}</head><body>
<h1>{html.escape(title)}</h1>
<p>{headline}</p>
{svg}
<h2>Segments</h2>
<table><tr><th>segment</th><th>items</th><th>feedback sent</th>{heads}</tr>{"".join(rows)}</table>
<h2>Retrains</h2>
<table><tr><th>triggered at item</th><th>version</th><th>decision</th><th>reasons</th></tr>
{"".join(retrains)}</table>
<h2>Summary (JSON)</h2>
<pre>{
        html.escape(
            json.dumps({k: v for k, v in summary.items() if k not in ("windows", "events")}, indent=2, default=str)
        )
    }</pre>
</body></html>
"""
