"""The generation replay's summary (``replay.json``), learning curve (``learning_curve.png``)
and report page (``report.html``): the file names the classification replay writes.

The headline: held-out preference accuracy (Wilson 95%) of the static base, of the loop's final
champion and of the oracle on the same held-out pairs, the loop against the static base and
against the oracle (McNemar, paired 95% interval), and the share of the oracle's gain the loop
reached. The learning curve: the held-out accuracy of the version serving after each pair of
the stream, its retrains marked where they were triggered."""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learnloop.replay.generation.evaluate import accuracy, gap_closed, paired
from learnloop.replay.plot import PAGE_STYLE, write_figure_and_page

if TYPE_CHECKING:
    from learnloop.replay.generation.baselines import Oracle
    from learnloop.replay.generation.config import GenerationReplayConfig, StreamTrace
    from learnloop.replay.generation.data import PreferenceStream


def _retrains(trace: StreamTrace, training: Mapping[int, Any]) -> list[dict[str, Any]]:
    out = []
    for job in sorted(trace.jobs, key=lambda j: j.created_at):
        result = job.result or {}
        verdict = result.get("verdict") or {}
        version = result.get("version")
        out.append(
            {
                "job_id": job.id,
                "requested_by": job.requested_by,
                "status": job.status,
                "trigger_pair": trace.pairs_before(job.created_at),
                "version": version,
                "promoted": bool(result.get("promoted")),
                "decision": verdict.get("decision") if job.status == "succeeded" else job.status,
                "reasons": verdict.get("reasons") or ([job.error] if job.error else []),
                "training": training.get(version) if version is not None else None,
                "retrain_wall_seconds": None if job.wall_seconds is None else round(job.wall_seconds, 1),
            }
        )
    return out


def summarize(
    config: GenerationReplayConfig,
    data: PreferenceStream,
    trace: StreamTrace,
    margins: Mapping[str, Sequence[float]],
    served: Sequence[tuple[int, int]],
    oracle: Oracle,
    *,
    rejected_versions: Sequence[int],
    training: Mapping[int, Any],
    timing: Mapping[str, float],
) -> dict[str, Any]:
    """``margins``: per scored version ("static", "v2", ..., "oracle") its held-out margins;
    ``served``: (version, pairs sent before it became champion), version 1 first."""

    def of(version: int) -> Sequence[float]:
        return margins["static" if version == 1 else f"v{version}"]

    final = served[-1][0]
    static, loop, best = margins["static"], of(final), margins["oracle"]
    held = {"static": accuracy(static), "loop": accuracy(loop), "oracle": accuracy(best)}
    return {
        "task": "generation",
        "config": config.to_dict(),
        "data": data.to_dict(),
        "final_champion": final,
        "held_out": held,
        "loop_vs_static": paired(static, loop),
        "oracle_vs_static": paired(static, best),
        "loop_vs_oracle": paired(best, loop),
        "oracle_gap_closed": gap_closed(
            held["static"]["accuracy"], held["loop"]["accuracy"], held["oracle"]["accuracy"]
        ),
        "learning_curve": [{"version": v, "from_pair": at, "held_out": accuracy(of(v))} for v, at in served],
        "retrains": _retrains(trace, training),
        "oracle": {"pairs": oracle.pairs, "training": oracle.training, "seconds": round(oracle.seconds, 1)},
        "feedback": {
            "pairs_sent": len(trace.sent),
            "events_sent": trace.feedback_events,
            "untruthful_pairs": trace.untruthful,
            "refused": dict(trace.refused),
        },
        "pairs_by_version": {str(v): n for v, n in sorted(Counter(trace.versions).items())},
        "safety": {"rejected_versions_served": sorted(set(trace.versions) & set(rejected_versions))},
        "events": [
            {"kind": e.kind, "version": e.version, "pair": trace.pairs_before(e.at), "reason": e.reason}
            for e in trace.events
        ],
        "timing": dict(timing),
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _figure(summary: Mapping[str, Any]) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    sent = summary["feedback"]["pairs_sent"]
    held = summary["held_out"]
    fig, ax = plt.subplots(figsize=(10, 5.2), layout="constrained")
    curve = summary["learning_curve"]
    for k, point in enumerate(curve):
        stop = curve[k + 1]["from_pair"] if k + 1 < len(curve) else sent
        acc, (low, high) = point["held_out"]["accuracy"], point["held_out"]["ci95"]
        ax.fill_between([point["from_pair"], stop], low, high, color="#2166ac", alpha=0.15, step="post")
        ax.plot([point["from_pair"], stop], [acc, acc], color="#2166ac", lw=2.5, label="learnloop" if k == 0 else None)
        ax.annotate(f"v{point['version']}", (point["from_pair"], acc), textcoords="offset points", xytext=(3, 5))
    static = held["static"]
    ax.axhline(static["accuracy"], color="#888888", lw=1.3, label="static base (never retrained)")
    ax.axhspan(*static["ci95"], color="#888888", alpha=0.07)
    oracle = held["oracle"]  # fitted once, on everything the stream sent: a point at its end
    ax.errorbar(
        [sent],
        [oracle["accuracy"]],
        yerr=[[oracle["accuracy"] - oracle["ci95"][0]], [oracle["ci95"][1] - oracle["accuracy"]]],
        fmt="D",
        color="#7b3294",
        capsize=5,
        label=f"oracle (an adapter fitted on all {sent} pairs)",
        zorder=5,
    )
    markers = {True: ("^", "#1a9850", "retrain promoted"), False: ("x", "#d73027", "retrain rejected")}
    seen: set[bool] = set()
    for r in summary["retrains"]:
        promoted = bool(r["promoted"])
        marker, color, label = markers[promoted]
        ax.axvline(r["trigger_pair"], color=color, lw=0.8, ls=":")
        ax.scatter([r["trigger_pair"]], [0.02], marker=marker, color=color, label=None if promoted in seen else label)
        seen.add(promoted)
    n = held["static"]["n"]
    ax.set(
        xlim=(0, max(sent, 1) * 1.03),
        ylim=(0, 1),
        xlabel="preference pairs streamed (feedback sent)",
        ylabel=f"held-out preference accuracy (n={n} pairs, Wilson 95%)",
        title=f"learnloop replay --task generation: {summary['data']['dataset']}, {summary['config']['base']}",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def _html(summary: Mapping[str, Any], svg: str) -> str:
    held, cmp = summary["held_out"], summary["loop_vs_static"]
    rows = "".join(
        f"<tr><td>{name}</td><td>{_pct(held[k]['accuracy'])}</td><td>{_pct(held[k]['ci95'][0])} - "
        f"{_pct(held[k]['ci95'][1])}</td><td>{held[k]['mean_margin']:+.3f}</td></tr>"
        for k, name in (
            ("static", "static base"),
            ("loop", f"learnloop (v{summary['final_champion']})"),
            ("oracle", "oracle"),
        )
    )
    retrains = "".join(
        f"<tr><td>{r['trigger_pair']}</td><td>{r['version'] or '-'}</td><td>{html.escape(str(r['decision']))}</td>"
        f"<td>{'<br>'.join(html.escape(str(x)) for x in r['reasons'])}</td></tr>"
        for r in summary["retrains"]
    )
    headline = (
        f"Held-out preference accuracy on {held['static']['n']} pairs never trained on: learnloop "
        f"{_pct(held['loop']['accuracy'])} vs static {_pct(held['static']['accuracy'])} "
        f"({100 * cmp['difference']:+.1f} points, {html.escape(cmp['test'])}: p(better)={cmp['p_better']:.2g}); "
        f"oracle {_pct(held['oracle']['accuracy'])}."
    )
    shown = {k: v for k, v in summary.items() if k != "events"}
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>learnloop replay --task generation</title>
{PAGE_STYLE}</head><body>
<h1>learnloop replay --task generation</h1>
<p>{headline}</p>
{svg[svg.find("<svg") :]}
<h2>Held-out preference accuracy</h2>
<table><tr><th>version</th><th>accuracy</th><th>95% CI</th><th>mean margin (nats)</th></tr>{rows}</table>
<h2>Retrains</h2>
<table><tr><th>triggered after pair</th><th>version</th><th>decision</th><th>reasons</th></tr>{retrains}</table>
<h2>Summary (JSON)</h2>
<pre>{html.escape(json.dumps(shown, indent=2, default=str))}</pre>
</body></html>
"""


def write_report(summary: Mapping[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``learning_curve.png`` and ``report.html`` into ``out``; returns their paths."""
    return write_figure_and_page(_figure(summary), out, lambda svg: _html(summary, svg))
