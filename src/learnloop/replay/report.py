"""What a replay measured: prequential accuracy against the baselines, and what the loop did.

Every stream item is scored by the version that served it *before* its own feedback existed
(prequential evaluation), so the loop is never judged on what it was trained on. The static
and oracle baselines are scored on the same items, which makes every comparison paired:
loop vs static is McNemar's exact test on the items exactly one of them gets right.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from learnloop.evaluation import classification_metrics, latency_percentiles, paired_comparison, wilson_interval
from learnloop.replay.drivers import JobRecord, LoopEvent
from learnloop.replay.stream import Segment

RECOVERY_POINTS = 0.02  # "recovered" = within 2 accuracy points of the oracle


@dataclass
class Trace:
    """Everything the replay observed, item by item, in stream order."""

    segments: list[Segment]  # in positions of the scored items (see ``rebase``)
    post_shift_start: int  # the first item after the domain shift
    items: list[int] = field(default_factory=list)  # stream index of each scored item
    refused: dict[str, int] = field(default_factory=dict)  # items learnloop refused, by error code
    truth: list[str] = field(default_factory=list)
    served: list[str] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)  # top-1 minus top-2 probability of each answer
    times: list[datetime] = field(default_factory=list)
    feedback_item: list[int] = field(default_factory=list)  # the item a feedback event is about
    feedback_sent: list[int] = field(default_factory=list)  # the item after which it was sent
    feedback_time: list[datetime] = field(default_factory=list)
    feedback_truthful: list[bool] = field(default_factory=list)
    feedback_label: list[str | None] = field(default_factory=list)  # the label it names or implies, if any
    events: list[LoopEvent] = field(default_factory=list)
    jobs: list[JobRecord] = field(default_factory=list)

    def rebase(self) -> None:
        """Segments and the shift were set in stream indices; refused items are not scored,
        so move them to positions among the scored items."""
        self.segments = [
            Segment(seg.name, bisect.bisect_left(self.items, seg.start), bisect.bisect_left(self.items, seg.stop))
            for seg in self.segments
        ]
        self.post_shift_start = bisect.bisect_left(self.items, self.post_shift_start)

    def item_at(self, at: datetime) -> int:
        """The first item served at or after ``at``."""
        return bisect.bisect_left(self.times, at)


def _accuracy(correct: np.ndarray) -> dict[str, Any]:
    n = int(correct.size)
    hits = int(correct.sum())
    low, high = wilson_interval(hits, n)
    return {"n": n, "accuracy": hits / n if n else None, "ci95": [low, high]}


def trailing_accuracy(correct: np.ndarray, window: int) -> np.ndarray:
    """Accuracy over the last ``window`` items at each item (fewer at the start)."""
    sums = np.cumsum(np.concatenate([[0.0], correct.astype(float)]))
    idx = np.arange(1, correct.size + 1)
    lo = np.maximum(idx - window, 0)
    out: np.ndarray = (sums[idx] - sums[lo]) / (idx - lo)
    return out


def labels_to_recover(
    loop: np.ndarray, oracle: np.ndarray, segment: Segment, labels_sent: np.ndarray, window: int
) -> dict[str, Any]:
    """Labelled feedback events sent after a shift until the loop's trailing accuracy comes
    within ``RECOVERY_POINTS`` of the oracle's over the same items and stays there to the end
    of the segment (a window that merely touches the oracle once does not count)."""
    w = max(20, min(window, len(segment) // 2))
    ends = np.arange(segment.start + w, segment.stop + 1)
    if ends.size == 0:
        return {"segment": segment.name, "recovered": False, "labels": None, "items": None, "window": w}
    loop_sums = np.concatenate([[0.0], np.cumsum(loop)])
    oracle_sums = np.concatenate([[0.0], np.cumsum(oracle)])
    gaps = ((oracle_sums[ends] - oracle_sums[ends - w]) - (loop_sums[ends] - loop_sums[ends - w])) / w
    behind = np.flatnonzero(gaps > RECOVERY_POINTS)
    if behind.size and behind[-1] == ends.size - 1:
        return {"segment": segment.name, "recovered": False, "labels": None, "items": None, "window": w}
    end = int(ends[behind[-1] + 1]) if behind.size else int(ends[0])
    labels = int(((labels_sent >= segment.start) & (labels_sent < end)).sum())
    return {"segment": segment.name, "recovered": True, "labels": labels, "items": end - segment.start, "window": w}


def _retrains(trace: Trace, versions: np.ndarray, paused_rate: float | None) -> list[dict[str, Any]]:
    """Each retrain job and what became of it; a promoted one with its latency from the
    feedback that triggered it (the last sent before the job was queued) to the promoted
    version's first answer, in items and seconds. ``paused_rate``: the stream's items per
    second where it waited for each retrain (in process, simulated time stands still during
    a fit); the ``_with_fit`` figures then add what a stream at that rate would have sent
    during the fit, so a slow fit costs what it would in a server. Over HTTP they are the same
    as the plain ones (the fit ran in real time while the stream went on)."""
    sent_times = trace.feedback_time
    # Promoted by the gate at once (swap), or later by the canary or shadow it started.
    promoted_versions = {e.version for e in trace.events if e.kind == "promoted" and e.version is not None}
    out = []
    for job in sorted(trace.jobs, key=lambda j: j.created_at):
        result = job.result or {}
        verdict = result.get("verdict") or {}
        version = result.get("version")
        checks = {c.get("set_name"): c for c in verdict.get("comparisons", []) if isinstance(c, dict)}
        row: dict[str, Any] = {
            "job_id": job.id,
            "requested_by": job.requested_by,
            "status": job.status,
            "trigger_item": trace.item_at(job.created_at),
            "version": version,
            "promoted": bool(result.get("promoted")) or version in promoted_versions,
            "rollout": result.get("rollout"),
            "decision": verdict.get("decision") if job.status == "succeeded" else job.status,
            "reasons": verdict.get("reasons") or ([job.error] if job.error else []),
            "recent": checks.get("recent"),
            "golden": checks.get("golden"),
            "retrain_wall_seconds": job.wall_seconds
            if job.wall_seconds is not None
            else (job.finished_at - job.started_at).total_seconds()
            if job.finished_at and job.started_at
            else None,
        }
        if row["promoted"] and version is not None:
            served = np.flatnonzero(versions == version)
            trigger = bisect.bisect_right(sent_times, job.created_at) - 1
            if served.size and trigger >= 0:
                first = int(served[0])
                row["first_served_item"] = first
                row["items_to_serving"] = first - trace.feedback_sent[trigger]
                row["seconds_to_serving"] = (trace.times[first] - sent_times[trigger]).total_seconds()
                paused = row["retrain_wall_seconds"] if paused_rate is not None else None
                row["items_to_serving_with_fit"] = row["items_to_serving"] + (
                    math.ceil(paused * paused_rate) if paused is not None and paused_rate is not None else 0
                )
                row["seconds_to_serving_with_fit"] = row["seconds_to_serving"] + (paused or 0.0)
        out.append(row)
    return out


def _median_of(values: Iterable[float | None]) -> float | None:
    found = [float(v) for v in values if v is not None]
    return float(np.median(found)) if found else None


def promotion_latency(retrains: Sequence[dict[str, Any]], post_shift_start: int, sent: np.ndarray) -> dict[str, Any]:
    """Feedback to a better answer, over the promotions: medians and worst of the per-promotion
    latencies (``_retrains``), and after the shift how many items (and labels sent) passed
    before the first version promoted after it answered."""
    timed = [r for r in retrains if r.get("items_to_serving") is not None]

    def median(key: str) -> float | None:
        return _median_of(r.get(key) for r in timed)

    after = [r["first_served_item"] for r in timed if r["first_served_item"] >= post_shift_start]
    first = min(after) if after else None
    return {
        "promotions": len(timed),
        "median_items": median("items_to_serving"),
        "median_seconds": median("seconds_to_serving"),
        "median_items_with_fit": median("items_to_serving_with_fit"),
        "median_seconds_with_fit": median("seconds_to_serving_with_fit"),
        "max_seconds_with_fit": max((float(r["seconds_to_serving_with_fit"]) for r in timed), default=None),
        "median_retrain_wall_seconds": _median_of(r.get("retrain_wall_seconds") for r in retrains),  # every retrain
        "first_after_shift": None
        if first is None
        else {
            "items": first - post_shift_start,
            "labels": int(((sent >= post_shift_start) & (sent < first)).sum()),
        },
    }


def _median_margin(trace: Trace) -> float | None:
    """The median margin of the answers that got feedback (small: users were asked about doubts)."""
    if not trace.margins or not trace.feedback_item:
        return None
    asked = [trace.margins[bisect.bisect_left(trace.items, i)] for i in trace.feedback_item]
    return float(np.median(asked))


def _versus_naive(truth: list[str], naive: Sequence[str], served: Sequence[str], post: slice) -> dict[str, Any]:
    """The loop against the naive loop after the shift: what the gate cost (naive better) or
    saved (loop better), McNemar's exact test both ways, paired on the same items."""
    c = paired_comparison(
        "post-shift", truth, list(np.asarray(naive)[post]), list(np.asarray(served)[post]), confidence=0.95
    )
    return {
        "test": "McNemar exact, one-sided each way, paired on the post-shift items",
        "n": c.n,
        "loop_accuracy": c.candidate_accuracy,
        "naive_accuracy": c.champion_accuracy,
        "difference": c.difference,
        "difference_ci95": [c.ci_low, c.ci_high],
        "loop_only_right": c.candidate_only,
        "naive_only_right": c.champion_only,
        "p_loop_better": c.p_better,
        "p_loop_worse": c.p_worse,
    }


def naive_sentence(versus: dict[str, Any]) -> str:
    """What the gate cost or saved against the naive loop, in one sentence (page and CLI)."""
    low, high = versus["difference_ci95"]
    if versus["p_loop_worse"] < 0.05:
        verdict = "the gate cost accuracy"
    elif versus["p_loop_better"] < 0.05:
        verdict = "the gate saved accuracy"
    else:
        verdict = "no significant difference"
    return (
        f"Naive loop (every label, no gate) {100 * versus['naive_accuracy']:.1f}%: loop minus naive "
        f"{100 * versus['difference']:+.1f} points (95% CI {100 * low:+.1f} to {100 * high:+.1f}; McNemar "
        f"p={versus['p_loop_better']:.2g} loop better, p={versus['p_loop_worse']:.2g} loop worse): {verdict}."
    )


def summarize(
    trace: Trace,
    static: Sequence[str],
    oracle: Sequence[str],
    *,
    window: int,
    rejected_versions: set[int],
    labels: Sequence[str] = (),
    naive: Sequence[str] | None = None,
    paused_rate: float | None = None,
) -> dict[str, Any]:
    """``naive``: the naive loop's predictions (``baselines.naive_baseline``); with them every
    block, window and metric has a ``naive`` entry too, and ``loop_vs_naive`` compares the two.
    ``paused_rate``: the stream's rate where it waited for each retrain (``_retrains``)."""
    truth = np.asarray(trace.truth, dtype=object)
    loop_ok = np.asarray(trace.served, dtype=object) == truth
    oracle_ok = np.asarray(oracle, dtype=object) == truth
    baselines = {"static": static, "oracle": oracle, **({"naive": naive} if naive is not None else {})}
    ok = {name: np.asarray(pred, dtype=object) == truth for name, pred in baselines.items()}
    ok["loop"] = loop_ok
    versions = np.asarray(trace.versions)
    sent = np.asarray(trace.feedback_sent, dtype=int)
    post = slice(trace.post_shift_start, len(truth))

    def block(sl: slice) -> dict[str, Any]:
        return {name: _accuracy(right[sl]) for name, right in ok.items()}

    post_truth = list(truth[post])
    retrains = _retrains(trace, versions, paused_rate)
    comparison = paired_comparison(
        "post-shift", post_truth, list(np.asarray(static)[post]), list(np.asarray(trace.served)[post]), confidence=0.95
    )
    static_acc = comparison.champion_accuracy
    oracle_acc = float(oracle_ok[post].mean()) if post_truth else 0.0
    gap = oracle_acc - static_acc
    served_rejected = [int(v) for v in sorted(set(versions.tolist()) & rejected_versions)]
    segments = []
    for seg in trace.segments:
        sl = slice(seg.start, seg.stop)
        n_sent = int(((sent >= seg.start) & (sent < seg.stop)).sum())
        segments.append({"name": seg.name, "start": seg.start, "stop": seg.stop, "labels_sent": n_sent, **block(sl)})
    windows = []
    for start in range(0, len(truth), window):
        sl = slice(start, min(start + window, len(truth)))
        windows.append(
            {
                "start": start,
                "stop": sl.stop,
                **{name: float(right[sl].mean()) for name, right in ok.items()},
                "version": int(versions[sl.stop - 1]),
            }
        )
    return {
        "items": len(truth),
        "refused": trace.refused,
        "post_shift_items": len(post_truth),
        "post_shift": block(post),
        "loop_vs_static": {
            "test": "McNemar exact, one-sided (loop better), paired on the post-shift items",
            "n": comparison.n,
            "difference": comparison.difference,
            "difference_ci95": [comparison.ci_low, comparison.ci_high],
            "relative_gain": comparison.difference / static_acc if static_acc else None,
            "loop_only_right": comparison.candidate_only,
            "static_only_right": comparison.champion_only,
            "p_value": comparison.p_better,
        },
        "oracle_gap_closed": (comparison.candidate_accuracy - static_acc) / gap if gap > 0 else None,
        **({"loop_vs_naive": _versus_naive(post_truth, naive, trace.served, post)} if naive is not None else {}),
        "post_shift_metrics": {
            name: classification_metrics(post_truth, list(np.asarray(pred, dtype=object)[post]), labels, bootstrap=1000)
            for name, pred in {**baselines, "loop": trace.served}.items()
        }
        if labels and post_truth
        else {},
        "serving_latency_ms": latency_percentiles(trace.latency_ms),
        "segments": segments,
        "labels_to_recover": [
            labels_to_recover(loop_ok, oracle_ok, seg, sent, window)
            for seg in trace.segments
            if seg.start >= trace.post_shift_start
        ],
        "feedback": {
            "sent": len(trace.feedback_item),
            "untruthful": int(len(trace.feedback_truthful) - sum(trace.feedback_truthful)),
            "median_margin": _median_margin(trace),
        },
        "retrains": retrains,
        "promotion_latency": promotion_latency(retrains, trace.post_shift_start, sent),
        "safety": {
            "versions_served": sorted({int(v) for v in versions.tolist()}),
            "rejected_versions": sorted(rejected_versions),
            "rejected_versions_served": served_rejected,
        },
        "events": [
            {"item": trace.item_at(e.at), "kind": e.kind, "version": e.version, "reason": e.reason}
            for e in trace.events
        ],
        "windows": windows,
    }
