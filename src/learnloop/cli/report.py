"""learnloop report and learnloop compare: a version's plots, and two versions side by side,
on the model's golden set; as HTML files a person can mail (styles and plots inline)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from learnloop.cli.common import ArtifactOpt, DbOpt, HomeOpt, ModelOpt, console, open_services, settings_for, write_file
from learnloop.cli.tables import Table

VersionOpt = Annotated[int, typer.Option("--version", "-v", min=1, help="Version number.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Directory to write the report into (made if missing).")]


def report(
    home: HomeOpt,
    model: ModelOpt,
    version: VersionOpt,
    out: OutOpt,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
) -> None:
    """Write a version's report: confusion matrix, ROC and reliability plots on the golden set.

    DIR gets report.html (one self-contained file: styles and plots inline, to mail or
    archive) and each plot as an SVG file.

    Example: learnloop report --home ./learnloop-home --model reviews --version 3 --out reports/v3
    """
    from learnloop.dashboard.report import version_report

    with open_services(settings_for(home, database_url, artifact_url=artifact_url)) as services:
        html, plots = version_report(services, model, version)
        metrics = services.reports.report(model, version).metrics
    write_file(out / "report.html", html.encode())
    for name, svg in plots.items():
        write_file(out / name, svg.encode())
    auc = metrics.get("roc_auc")
    console.print(
        f"{model} v{version} on {metrics['n']} golden examples: accuracy {100 * metrics['accuracy']:.1f}%"
        + (f", ROC AUC {auc:.3f}" if auc is not None else "")
        + f", ECE {metrics['ece']:.3f}"
    )
    console.print(f"report: {out / 'report.html'} (plots: {', '.join(sorted(plots))})", soft_wrap=True)


def compare(
    home: HomeOpt,
    model: ModelOpt,
    a: Annotated[int, typer.Argument(min=1, help="The first version (the baseline).")],
    b: Annotated[int, typer.Argument(min=1, help="The second version: differences are b - a.")],
    out: Annotated[Path | None, typer.Option("--out", help="Also write compare.html into this directory.")] = None,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
) -> None:
    """Compare two versions on the same golden examples: paired differences with 95% intervals.

    Example: learnloop compare --home ./learnloop-home --model reviews 1 3 --out reports
    """
    from learnloop.dashboard.comparison import metric_rows
    from learnloop.dashboard.report import comparison_report

    with open_services(settings_for(home, database_url, artifact_url=artifact_url)) as services:
        found = services.reports.compare(model, a, b)
        html = comparison_report(services, model, a, b) if out is not None else None
    table = Table(title=f"{model}: v{b} - v{a} on the same {found.n} golden examples", title_justify="left")
    for column in ("metric", f"v{a}", f"v{b}", "difference", "95% CI", "shown"):
        table.add_column(column, justify="left" if column in ("metric", "shown") else "right")
    for r in metric_rows(found):
        shown = {"a": f"v{a} better", "b": f"v{b} better"}.get(r["better"], "no difference shown")
        scale, unit, mark = (100.0, " pts", "%") if r["percent"] else (1.0, "", "")
        ci = r.get("ci") or [None, None]
        table.add_row(
            r["name"],
            f"{scale * r['a']:.3g}{mark}",
            f"{scale * r['b']:.3g}{mark}",
            f"{scale * r['difference']:+.3g}{unit}",
            "-" if None in ci else f"{scale * ci[0]:+.3g} to {scale * ci[1]:+.3g}",
            shown,
        )
    console.print(table)
    for p in found.params:
        console.print(f"param {p.key}: {p.a!r} -> {p.b!r}", soft_wrap=True)
    if html is not None and out is not None:
        write_file(out / "compare.html", html.encode())
        console.print(f"report: {out / 'compare.html'}", soft_wrap=True)
