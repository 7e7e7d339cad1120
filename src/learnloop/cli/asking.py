"""learnloop ask: the champion's recent answers most worth asking users about."""

from __future__ import annotations

from typing import Annotated

import typer

from learnloop.cli.common import DbOpt, HomeOpt, ModelOpt, console, open_services, settings_for
from learnloop.cli.tables import Table


def ask(
    home: HomeOpt,
    model: ModelOpt,
    database_url: DbOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="How many answers to list.")] = 20,
    strategy: Annotated[
        str, typer.Option("--strategy", help="margin (smallest top-1 minus top-2 first) or entropy (largest first).")
    ] = "margin",
    window: Annotated[
        int, typer.Option("--window", min=1, max=20_000, help="Newest unlabelled answers considered.")
    ] = 1000,
) -> None:
    """The champion's newest unlabelled answers most worth a label (most uncertain first, no
    two near-identical texts); send feedback on them with their prediction id."""
    with open_services(settings_for(home, database_url)) as services:
        result = services.active.ask(model, limit=limit, strategy=strategy, window=window)
    if result.version is None:
        console.print(f"model {model!r} has no champion: nothing to ask about")
        return
    table = Table(
        title=f"{model} version {result.version}: {len(result.items)} of {result.considered} unlabelled answers "
        f"to ask about ({result.strategy})",
        title_justify="left",
    )
    for column in ("prediction id", "score", "answer", "probabilities", "text"):
        table.add_column(column, justify="right" if column == "score" else "left")
    for item in result.items:
        p = item.pick
        probabilities = ", ".join(f"{k} {v:.2f}" for k, v in sorted(p.probabilities.items(), key=lambda kv: -kv[1]))
        table.add_row(p.id, f"{p.score:.3f}", p.label, probabilities, p.text[:200])
    console.print(table)
