"""learnloop drift: the latest drift check (or one run now), recent checks, and a plot of them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from learnloop.cli.common import (
    ArtifactOpt,
    DbOpt,
    HomeOpt,
    ModelOpt,
    console,
    open_services,
    settings_for,
    write_file,
)
from learnloop.cli.tables import Table

if TYPE_CHECKING:
    from learnloop.domain import DriftCheck

_STYLE = {"drift": "bold red", "ok": "green", "insufficient_data": "yellow", "no_reference": "yellow"}


def _num(value: Any, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def show_check(check: DriftCheck) -> None:
    style = _STYLE.get(check.status, "")
    console.print(
        f"drift check {check.id} of version [bold]{check.version}[/] at {check.created_at:%Y-%m-%d %H:%M:%S}: "
        f"[{style}]{check.status}[/]: {check.message}"
    )
    if not check.results:
        return
    if check.window_start and check.window_end:
        console.print(
            f"window: {check.n} answers, {check.window_start:%Y-%m-%d %H:%M:%S} to {check.window_end:%H:%M:%S}"
        )
    table = Table(title="detectors (drift = p < alpha and effect >= threshold)", title_justify="left")
    for column in ("detector", "test", "statistic", "p", "effect", "threshold", "status"):
        table.add_column(column, justify="right" if column in ("statistic", "p", "threshold") else "left")
    for r in check.results:
        table.add_row(
            r["detector"],
            r["test"],
            _num(r["statistic"]),
            _num(r["p_value"], ".2g"),
            f"{r['effect']} {_num(r['effect_size'])}",
            f"{r['effect_threshold']:g}",
            f"[{_STYLE.get(r['status'], '')}]{r['status']}[/]",
        )
    console.print(table)


def show_history(checks: list[DriftCheck]) -> None:
    table = Table(title="recent checks, newest first", title_justify="left")
    for column in ("id", "time", "version", "answers", "status", "alarms"):
        table.add_column(column)
    for c in checks:
        table.add_row(
            str(c.id),
            f"{c.created_at:%m-%d %H:%M:%S}",
            str(c.version),
            str(c.n),
            f"[{_STYLE.get(c.status, '')}]{c.status}[/]",
            ", ".join(c.alarms),
        )
    console.print(table)


def drift(
    home: HomeOpt,
    model: ModelOpt,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
    now: Annotated[bool, typer.Option("--now", help="Run a check now (stored like a periodic one).")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Recent checks to list and plot.")] = 20,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG of each detector's effect over the recent checks.")
    ] = None,
) -> None:
    """Drift of the champion's inputs and outputs against the reference it was trained with."""
    with open_services(settings_for(home, database_url, artifact_url=artifact_url)) as services:
        fresh = services.drift.check(model) if now else None
        checks = services.drift.history(model, limit)
        latest = fresh or (checks[0] if checks else None)
        if latest is None:
            console.print(f"model {model!r} has no drift check yet (run with --now, or wait for the worker)")
        else:
            show_check(latest)
        if len(checks) > 1:
            show_history(checks)
        if plot is not None:
            from learnloop.monitoring.plot import drift_history_png

            write_file(plot, drift_history_png(checks, title=f"drift of {model}: effect size per check"))
            console.print(f"plot: {plot}")
