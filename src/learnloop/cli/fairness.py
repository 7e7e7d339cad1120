"""learnloop fairness: each version's accuracy and rates per group of a metadata field, and the
gaps between groups, on the newest labelled feedback (``monitoring.fairness``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

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
    from learnloop.evaluation.fairness import Estimate, FieldReport
    from learnloop.monitoring.fairness import FairnessReport


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _estimate(e: Estimate) -> str:
    if e.value is None:
        return "-"
    if not e.meaningful or e.low is None or e.high is None:
        return f"{_pct(e.value)} [dim](n={e.n}, too few)[/]"
    return f"{_pct(e.value)} [{_pct(e.low)}, {_pct(e.high)}]"


def show_field(version: int, report: FieldReport, rows: str = "labelled answers") -> None:
    labels = list(report.groups[0].selection_rate) if report.groups else []
    table = Table(
        title=f"v{version} by {escape(report.field)}: {report.n} {rows} with it "
        f"({report.confidence:.0%} bootstrap intervals; groups under {report.min_n} rows: no interval)",
        title_justify="left",
    )
    table.add_column("group")
    table.add_column("n", justify="right")
    table.add_column("accuracy")
    for label in labels:
        table.add_column(f"selects {escape(label)}")
        table.add_column(f"TPR {escape(label)}")
    for g in report.groups:
        cells = [escape(g.group), str(g.n), _estimate(g.accuracy)]
        for label in labels:
            cells += [_estimate(g.selection_rate[label]), _estimate(g.true_positive_rate[label])]
        table.add_row(*cells)
    console.print(table)
    if not report.gaps:
        console.print(f"  no gap: fewer than two groups have {report.min_n} rows")
        return
    gaps = Table(title="gaps between groups (largest minus smallest rate)", title_justify="left")
    for column in ("gap", "label", "value", "interval", "highest", "lowest", "groups"):
        gaps.add_column(column, justify="right" if column in ("value", "groups") else "left")
    largest = report.largest
    for gap in report.gaps:
        name = "demographic parity" if gap.metric == "demographic_parity" else "equal opportunity"
        mark = " [bold](largest)[/]" if gap is largest else ""
        gaps.add_row(
            name + mark,
            escape(gap.label),
            _pct(gap.value),
            f"[{_pct(gap.low)}, {_pct(gap.high)}]",
            escape(gap.highest),
            escape(gap.lowest),
            str(gap.groups),
        )
    console.print(gaps)


def show_report(report: FairnessReport, versions: int) -> None:
    console.print(
        f"fairness of [bold]{escape(report.model)}[/] on the newest {report.window} feedback events "
        f"({report.labelled} labelled answers); fields: {escape(', '.join(report.fields)) or 'none'}"
    )
    for note in report.notes:
        console.print(f"  [dim]{escape(note)}[/]")
    if not report.versions:
        console.print("no labelled feedback on logged answers yet")
    for v in report.versions[:versions]:
        console.print(f"\n[bold]version {v.version}[/]: {v.n} labelled answers")
        for field_report in v.fields:
            show_field(v.version, field_report)
        for field_report in v.golden:
            show_field(v.version, field_report, f"golden-set rows (of {report.golden})")


def fairness(
    home: HomeOpt,
    model: ModelOpt,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
    field: Annotated[
        list[str] | None,
        typer.Option(
            "--field", "-f", help="A metadata field to compare (repeatable); default: policy fairness_fields."
        ),
    ] = None,
    versions: Annotated[int, typer.Option("--versions", min=1, max=100, help="Newest versions to show.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG of each version's largest gaps with their intervals.")
    ] = None,
) -> None:
    """Accuracy, selection and true-positive rates per group, and the gaps between groups
    (demographic parity, equal opportunity), per version, on live feedback and, where its rows
    carry the field, on the golden set."""
    with open_services(settings_for(home, database_url, artifact_url=artifact_url)) as services:
        report = services.fairness.report(model, field or None)
    if as_json:
        console.print_json(json.dumps(report.to_dict(), default=str))
    else:
        show_report(report, versions)
    if plot is not None:
        from learnloop.monitoring.fairness_plot import fairness_png

        write_file(plot, fairness_png(report))
        console.print(f"plot: {plot}")
