"""Progress on the terminal for the replays: bars over the stream and the baselines' work,
the loop's events printed as they happen."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from learnloop.cli.common import console, pct
from learnloop.replay.drivers import LoopEvent


class ConsoleObserver:
    """Progress bars over the stream and the oracle's refits; loop events printed as they happen."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict[str, Any] = {}

    def _advance(self, description: str, done: int, total: int, note: str = "") -> None:
        if description not in self.tasks:
            self.progress.start()
            self.tasks[description] = self.progress.add_task(description, total=total, note="")
        self.progress.update(self.tasks[description], completed=done, note=note)
        if done == total:
            self.progress.stop()

    def stage(self, message: str) -> None:
        self.progress.console.print(f"[dim]{message}[/]")

    def item(self, done: int, total: int, scored: int, correct: int) -> None:
        self._advance("replaying", done, total, f"online accuracy {pct(correct / scored)}" if scored else "")

    def refit(self, done: int, total: int) -> None:
        self._advance("oracle", done, total)

    def close(self) -> None:
        """Give the terminal back, also when the replay failed half-way."""
        self.progress.stop()

    def event(self, event: LoopEvent, item: int) -> None:
        style = {
            "promoted": "green",
            "candidate_rejected": "yellow",
            "rolled_back": "red",
            "rollout_started": "cyan",
            "rollout_step": "cyan",
        }.get(event.kind)
        if style is None and event.kind != "retrain_queued" and not event.kind.endswith("_failed"):
            return
        if event.version == 1 and event.kind == "promoted":
            return
        reason = (event.reason or "").split("; ")
        text = f"item {item:>5}: {event.kind.replace('_', ' ')}" + (f" v{event.version}" if event.version else "")
        # The check that decided: a failed one for a rejection, the recent-feedback test for a
        # promotion by the gate (a rollout's promotion gives its own reason first).
        if event.kind == "candidate_rejected":
            failed = ("NOT", "REGRESSES", "WORSE", "BEYOND", "required")
            detail = next((r for r in reason if any(word in r for word in failed)), reason[-1])
        elif event.kind == "promoted":
            detail = next((r for r in reason if "recent feedback" in r), reason[0])
        else:
            detail = reason[0]
        self.progress.console.print(f"[{style or 'dim'}]{text}[/] [dim]{detail[:110]}[/]")


Observer = TypeVar("Observer", bound=ConsoleObserver)
T = TypeVar("T")


def observed(observer: Observer | None, run: Callable[[Observer | None], T]) -> T:
    """``run(observer)``, the terminal given back however it ends."""
    try:
        return run(observer)
    finally:
        if observer is not None:
            observer.close()


def print_json(summary: dict[str, Any]) -> None:
    console.print_json(json.dumps(summary, default=str))


def print_safety_and_files(served_rejected: list[int], summary: Path, plot: Path, page: Path) -> None:
    console.print(
        "safety: "
        + (
            "[green]no version the gate rejected was ever served[/]"
            if not served_rejected
            else f"[red]served rejected versions {served_rejected}[/]"
        )
    )
    console.print(f"summary: {summary}\nlearning curve: {plot}  (and {page})")
