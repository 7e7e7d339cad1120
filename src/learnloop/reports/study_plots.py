"""A parameter study as pictures (PNG, matplotlib, drawn server-side): its trials over time
(each finished trial's score, pruned ones where they were stopped, the best so far as a
line) and how much each parameter mattered (Optuna's fANOVA importance)."""

from __future__ import annotations

import io
from typing import Any

from learnloop.training.studies import StudyView, TrialView

_DONE, _PRUNED, _BEST, _FAILED = "#2166ac", "#bbbbbb", "#d73027", "#000000"


def _figure(width: float, height: float) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), layout="constrained")


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def trials_png(view: StudyView) -> bytes:
    """Each trial's score against when it ended: finished ones in blue, pruned ones in grey at
    the score they had when stopped, and the best so far in red."""
    fig, ax = _figure(8, 3.6)
    ended = sorted((t for t in view.trials if t.completed is not None), key=lambda t: t.completed or 0)
    # Seconds since the first trial started: a study runs for seconds or minutes (its budget),
    # which clock times would label as a column of identical minutes.
    starts = [t.started for t in view.trials if t.started is not None]
    origin = min(starts) if starts else (ended[0].completed if ended else None)

    def at(t: TrialView) -> float:
        assert t.completed is not None and origin is not None
        return (t.completed - origin).total_seconds()

    done = [(at(t), t.value) for t in ended if t.state == "complete" and t.value is not None]
    pruned = [(at(t), t.intermediate[max(t.intermediate)]) for t in ended if t.state == "pruned" and t.intermediate]
    if done:
        ax.scatter(*zip(*done, strict=True), color=_DONE, s=22, zorder=3, label="finished")
        best, steps = float("-inf"), []
        for moment, value in done:
            best = max(best, value)
            steps.append((moment, best))
        ax.step(*zip(*steps, strict=True), where="post", color=_BEST, lw=1.5, zorder=2, label="best so far")
    if pruned:
        ax.scatter(*zip(*pruned, strict=True), color=_PRUNED, s=18, marker="x", zorder=3, label="pruned (score then)")
    if not done and not pruned:
        ax.text(0.5, 0.5, "no trial has ended yet", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(loc="lower right", fontsize=8)
    ax.set_ylabel("accuracy over the folds")
    ax.set_xlabel("seconds since the study's first trial started (when each trial ended)")
    ax.set_title(f"{view.summary.name}: {len(view.trials)} trials", loc="left", fontsize=10)
    ax.grid(alpha=0.3)
    return _png(fig)


def importance_png(view: StudyView) -> bytes:
    """Each searched parameter's importance (share of the score's variance), largest on top."""
    fig, ax = _figure(6, 0.45 * max(len(view.importance), 2) + 1.2)
    if view.importance:
        names = list(view.importance)[::-1]
        ax.barh(names, [view.importance[n] for n in names], color=_DONE)
        ax.set_xlim(0, 1)
        ax.set_xlabel("importance (fANOVA, shares sum to 1)")
    else:
        ax.text(0.5, 0.5, "too few finished trials to tell", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_title(f"{view.summary.name}: parameter importance", loc="left", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)
