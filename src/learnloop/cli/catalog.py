"""learnloop models: the models a home holds."""

from __future__ import annotations

from rich.markup import escape

from learnloop.cli.common import DbOpt, HomeOpt, console, open_services, settings_for
from learnloop.cli.tables import Table


def list_models(home: HomeOpt, database_url: DbOpt = None) -> None:
    """The models of the home: task, family, labels, champion version, created.

    \b
    Examples:
      learnloop models
      learnloop models --home ./learnloop-demo/home
    """
    from learnloop.tasks import get_task

    settings = settings_for(home, database_url)
    with open_services(settings) as services:
        models = services.registry.list_models()
        table = Table(title=f"models in {settings.home}")
        for column in ("model", "task", "family", "champion", "created", "labels"):
            table.add_column(column)
        for m in models:
            champion = services.registry.deployment(m.name).champion_version
            table.add_row(
                escape(m.name),
                get_task(m.task).describe(m),
                m.family,
                "-" if champion is None else f"version {champion}",
                f"{m.created_at:%Y-%m-%d %H:%M}",
                escape(", ".join(m.labels)),
            )
    if not models:
        console.print(f"no model in {settings.home} yet; create one with learnloop init --model NAME --data FILE")
        return
    console.print(table)
