"""learnloop families: the model families, each with its parameters and their defaults."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from learnloop.cli.common import console
from learnloop.cli.tables import Table


def families(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """List the model families (init --family NAME) with their parameters (--param KEY=VALUE),
    types and defaults."""
    from learnloop.families import FAMILIES  # numpy and every family's module: not for --help
    from learnloop.families.base import family_listing

    if as_json:
        listed = [family_listing(family) for family in FAMILIES.values()]
        console.print_json(json.dumps(listed))
        return
    for family in FAMILIES.values():
        table = Table(title=escape(f"{family.key} ({family.task}): {family.summary}"), title_justify="left")
        for column in ("parameter", "type", "default", "description"):
            table.add_column(column)
        for p in family.parameters():
            table.add_row(*(escape(cell) for cell in (p.name, p.type, json.dumps(p.default), p.description)))
        console.print(table)
