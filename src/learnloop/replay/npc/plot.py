"""The generative demo's learning curve (PNG): each rating the players gave, by the version
that answered, with the trailing mean rating of each version over time; the loop's events
(retrain queued, candidate registered or rejected, canary started, promoted, rolled back)
marked where they happened, the retrain shaded. Below: the share of answers that broke the scene."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from learnloop.replay.npc.players import Answer

WINDOW = 24  # answers in each trailing mean
_COLORS = ("#888888", "#2166ac", "#1a9850", "#7b3294", "#d73027")
_MARKS = {
    "retrain_queued": ("#555555", "retrain queued"),
    "version_registered": ("#2166ac", "candidate registered"),
    "candidate_rejected": ("#d73027", "candidate rejected"),
    "rollout_started": ("#fdae61", "canary started"),
    "promoted": ("#1a9850", "promoted"),
    "rolled_back": ("#f46d43", "rolled back"),
}


def _trailing(values: Sequence[float], window: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    data = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.insert(data, 0, 0.0))
    counts = np.minimum(np.arange(1, data.size + 1), window)
    starts = np.arange(1, data.size + 1) - counts
    return np.asarray((sums[1:] - sums[starts]) / counts, dtype=np.float64)


def write_learning_curve(
    answers: Sequence[Answer], events: Sequence[dict[str, Any]], summary: dict[str, Any], path: Path
) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]}, layout="constrained"
    )
    ordered = sorted(answers, key=lambda a: a.at)
    rng = np.random.default_rng(0)
    for version in sorted({a.version for a in ordered}):
        mine = [a for a in ordered if a.version == version]
        color = _COLORS[(version - 1) % len(_COLORS)]
        times = [a.at for a in mine]
        ratings = [a.rating for a in mine]
        ax.scatter(times, np.asarray(ratings) + rng.uniform(-0.15, 0.15, len(mine)), s=8, color=color, alpha=0.35)
        ax.plot(
            times, _trailing(ratings, WINDOW), color=color, lw=2.2, label=f"v{version}: mean rating (last {WINDOW})"
        )
        ax2.plot(times, _trailing([float(a.breaks_scene) for a in mine], WINDOW), color=color, lw=1.6)
    seen: set[str] = set()
    training_since: float | None = None
    for event in events:
        if event["kind"] == "retrain_queued":
            training_since = event["at"]
        elif training_since is not None and event["kind"] in (
            "version_registered",
            "candidate_rejected",
            "retrain_failed",
        ):
            for axis in (ax, ax2):
                axis.axvspan(training_since, event["at"], color="#eeeeee", zorder=0)
            training_since = None
        mark = _MARKS.get(event["kind"])
        if mark is None or (event["kind"] in ("promoted", "version_registered") and (event["version"] or 0) <= 1):
            continue  # version 1 is registered and promoted when the model is created
        color, name = mark
        ax.axvline(event["at"], color=color, ls="--", lw=1.1, label=None if name in seen else name)
        ax2.axvline(event["at"], color=color, ls="--", lw=1.1)
        seen.add(name)
    ax.set_ylim(0.6, 5.4)
    ax.set_ylabel("rating (1-5)")
    ax.grid(alpha=0.3)
    first, final = summary["first_champion"], summary["final_champion"]
    title = f"learnloop demo --task generation: the innkeeper, v1 mean rating {_mean(first)}"
    if final["version"] != first["version"]:
        title += f" -> v{final['version']} {_mean(final)}"
    fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    fig.legend(loc="outside lower center", fontsize=8, ncol=5, frameon=False)
    ax2.set_ylabel(f"breaks the scene\n(last {WINDOW})")
    ax2.set_ylim(-0.05, 1.05)
    ax2.set_xlabel("seconds since the demo started")
    ax2.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _mean(champion: dict[str, Any]) -> str:
    mean = champion["rating"]["mean"]
    return "-" if mean is None else f"{mean:.2f}"
