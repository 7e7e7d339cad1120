"""learnloop value: what each retrain cost and what it bought, in a table (and a picture)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from learnloop.cli.common import DbOpt, HomeOpt, console, only_model, open_services, settings_for, write_file
from learnloop.cli.tables import Table

if TYPE_CHECKING:
    from learnloop.monitoring.value import RetrainValue, ValueReport


def _num(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _interval(ci: tuple[float, float] | None, spec: str) -> str:
    return "" if ci is None else f" [{ci[0]:{spec}}, {ci[1]:{spec}}]"


def _row(report: ValueReport, r: RetrainValue) -> list[str]:
    cost, gain = r.cost, r.gain
    claimed = gain is not None and gain.claimed
    verdict = f"[bold red]bought nothing: {r.verdict}[/]" if r.bought_nothing else r.verdict
    if r.verdict == "gain":
        verdict = f"[green]{r.verdict}[/]"
    cells = [
        f"v{r.version}",
        r.status,
        _num(cost.cpu_seconds if cost else None),
        _num(cost.wall_seconds if cost else None),
        _num(cost.peak_rss_bytes / 2**20 if cost else None, ".0f"),
        _num(cost.gpu_seconds if cost else None, ".1f"),
        (_num(gain.delta, "+.3f") + _interval(gain.delta_ci, "+.3f")) if gain and claimed else "-",
        str(gain.served) if gain else "-",
        (_num(gain.gain, "+.1f") + _interval(gain.gain_ci, "+.1f")) if gain and claimed else "-",
    ]
    if report.priced:
        cells += [_num(r.cost_money, ".4f"), _num(r.value_money), _num(r.return_money, "+.4f")]
    return [*cells, verdict]


def show_report(report: ValueReport) -> None:
    table = Table(
        title=f"retrains of {report.model}: cost, and the {report.measure} gained after promotion (95% intervals)",
        title_justify="left",
    )
    columns = ["version", "status", "CPU s", "wall s", "peak MiB", "GPU s", "change", "served", f"gain ({report.unit})"]
    if report.priced:
        columns += ["cost", "value", "return"]
    for column in [*columns, "verdict"]:
        table.add_column(column, justify="left" if column in ("version", "status", "verdict") else "right")
    for r in report.retrains:
        table.add_row(*_row(report, r))
    console.print(table)
    t = report.totals
    gain = (
        f"gain {t['gain']:+.1f} {report.unit} (about {t['gain_ci'][0]:+.1f} to {t['gain_ci'][1]:+.1f})"
        if t["gain"] is not None
        else "no gain claimed yet"
    )
    money = f"; cost {t['cost_money']:.4f}, value {t['value_money'] or 0:.2f}, return {t['return_money']:+.4f}"
    console.print(
        f"total: {t['retrains']} versions, {t['measured']} fits measured: {t['cpu_seconds']:.1f} CPU s, "
        f"{t['wall_seconds']:.1f} wall s"
        + (f", {t['gpu_seconds']:.1f} GPU s" if t["gpu_seconds"] else "")
        + f"; {gain}"
        + (money if report.priced else "")
        + f"; [bold]{t['bought_nothing']} bought nothing[/]"
    )
    for r in report.retrains:
        if r.gain is not None and not r.gain.claimed:
            console.print(f"v{r.version}: {r.gain.reason}", style="yellow")
    if not report.priced:
        console.print(
            "unpriced: set value_per_correct_answer (or value_per_rating_point) and cost_per_cpu_hour "
            "with learnloop config --set to see cost, value and return in money",
            style="dim",
        )


def value(
    home: HomeOpt,
    model: Annotated[str | None, typer.Argument(help="Model name (default: the home's only model).")] = None,
    database_url: DbOpt = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG of cumulative cost against cumulative value.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """What each retrain cost (CPU, wall, peak memory, GPU) and bought (the change in online
    accuracy or mean rating after its promotion, times the traffic it served), with the return
    at the policy's prices; retrains that bought nothing are flagged.

    \b
    Examples:
      learnloop value sentiment
      learnloop value sentiment --plot value.png
    """
    with open_services(settings_for(home, database_url)) as services:
        name = model or only_model([m.name for m in services.registry.list_models()], home)
        report = services.value.report(name)
    if as_json:
        import orjson

        console.print_json(orjson.dumps(report.to_dict()).decode())
    else:
        show_report(report)
    if plot is not None:
        from learnloop.monitoring.value_plot import value_png

        write_file(plot, value_png(report))
        console.print(f"plot: {plot}")
