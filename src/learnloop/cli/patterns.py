"""learnloop patterns: where a model's answers keep being corrected (clusters of corrected texts,
slices with an excess of errors); ``--check`` also reports new ones as ``error_pattern`` events."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from learnloop.cli.common import ArtifactOpt, DbOpt, HomeOpt, console, only_model, open_services, pct, settings_for
from learnloop.cli.models import progress_bar
from learnloop.cli.tables import Table

if TYPE_CHECKING:
    from learnloop.monitoring.patterns import ModelPatterns
    from learnloop.services import Services


def _model(services: Services, given: str | None) -> str:
    return given or only_model([m.name for m in services.registry.list_models()], services.settings.home)


def show(found: ModelPatterns, *, examples: int) -> None:
    a = found.analysis
    which = f"version {found.version}" if found.version is not None else "every version"
    console.print(
        f"[bold]{escape(found.model)}[/]: {a.judged:,} judged answers ({which}, newest {found.window:,}), "
        f"{a.disagreements:,} corrected; analysed in {a.seconds:.1f} s"
    )
    if a.k is None:
        console.print(f"no clusters: {escape(a.note)}")
    else:
        silhouette = "-" if a.silhouette is None else f"{a.silhouette:.3f}"
        table = Table(
            title=f"patterns: {a.k} clusters of the corrected texts (k by the best mean silhouette, {silhouette}); "
            "region = every judged answer nearest the cluster, * = errors significantly above the rest "
            "(Fisher exact, BH q < 0.05)",
            title_justify="left",
        )
        for column in ("size", "terms", "predicted -> corrected", "region wrong", "rest", "q", "examples"):
            table.add_column(column, justify="right" if column in ("size", "region wrong", "rest", "q") else "left")
        for p in a.patterns:
            r = p.region
            table.add_row(
                str(p.size),
                escape(", ".join(p.terms)),
                escape("\n".join(f"{pair} ({n})" for pair, n in p.pairs)),
                f"{'* ' if r.significant else ''}{pct(r.error_rate)} of {r.n}",
                pct(r.rest_rate),
                f"{r.q_value:.2g}",
                escape("\n".join(e.text[:120] for e in p.examples[:examples])),
            )
        console.print(table)
    slices = Table(
        title=f"slices with significantly more errors than the rest ({len(a.slices)} of {a.slices_tested} tested; "
        "Fisher exact one-sided, Benjamini-Hochberg q < 0.05)",
        title_justify="left",
    )
    for column in ("slice", "n", "wrong", "rest n", "rest wrong", "q"):
        slices.add_column(column, justify="left" if column == "slice" else "right")
    for s in a.slices:
        t = s.test
        slices.add_row(escape(s.key), str(t.n), pct(t.error_rate), str(t.rest_n), pct(t.rest_rate), f"{t.q_value:.2g}")
    console.print(slices)


def patterns(
    home: HomeOpt,
    model_arg: Annotated[str | None, typer.Argument(metavar="MODEL", help="Model name (or --model).")] = None,
    model_opt: Annotated[
        str | None, typer.Option("--model", "-m", help="Model name; default: the home's only model.")
    ] = None,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
    version: Annotated[int | None, typer.Option("--version", min=1, help="Only this version's answers.")] = None,
    window: Annotated[int, typer.Option("--window", min=100, max=50_000, help="Newest judged answers.")] = 10_000,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Also write an error_pattern event for each pattern not reported before "
            "(over every version's newest answers).",
        ),
    ] = False,
    examples: Annotated[int, typer.Option("--examples", min=0, max=3, help="Examples per pattern.")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="Print the analysis as the API's JSON.")] = False,
) -> None:
    """Where the model keeps being corrected: clusters of the corrected texts with their terms,
    label pairs and examples, and the slices whose error rate is significantly above the rest's."""
    with open_services(settings_for(home, database_url, artifact_url=artifact_url)) as services, progress_bar() as bar:
        name = _model(services, model_arg or model_opt)
        step = bar.add_task("reading feedback", total=1.0)

        def progress(fraction: float, message: str) -> None:
            bar.update(step, completed=fraction, description=message)

        if check:
            reported = services.patterns.check(name, actor="cli", progress=progress)
            found, new = reported.patterns, reported.new
        else:
            found, new = services.patterns.analyse(name, version=version, window=window, progress=progress), []
    if as_json:
        from learnloop.api.pattern_schemas import ErrorPatternCheckPublic, ErrorPatternsPublic

        body = ErrorPatternsPublic.of(found)
        text = ErrorPatternCheckPublic(patterns=body, new=new).model_dump_json() if check else body.model_dump_json()
        console.print_json(text)
        return
    show(found, examples=examples)
    if check:
        console.print(f"{len(new)} new pattern(s) reported as error_pattern events" if new else "nothing new to report")
        for data in new:
            console.print(f"  {escape(json.dumps({k: data[k] for k in ('type', 'terms', 'key') if k in data}))}")
