"""The ``learnloop`` command."""

from __future__ import annotations

import os
import sys

import typer
from rich.markup import escape

from learnloop.cli import (
    asking,
    drift,
    families,
    generate,
    jobs,
    models,
    replay,
    report,
    rollouts,
    serve,
    subjects,
    webhooks,
)
from learnloop.cli.common import err_console
from learnloop.errors import LearnloopError

app = typer.Typer(
    name="learnloop",
    help="Serve a model, take feedback, retrain, prove it is better, roll it out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(models.init)
app.command()(models.delete)
app.command()(serve.serve)
app.command()(serve.worker)
app.command()(serve.retrain)
app.command()(models.versions)
app.command()(models.status)
app.command()(models.events)
app.command()(models.promote)
app.command()(models.rollback)
app.command()(models.config)
app.command()(models.export)
app.command()(replay.replay)
app.command()(replay.demo)
app.command("sample-size")(rollouts.sample_size)
app.command()(drift.drift)
app.command()(asking.ask)
app.command()(generate.generate)
app.command()(report.report)
app.command()(report.compare)
app.command()(families.families)
app.add_typer(rollouts.app, name="rollout")
app.add_typer(subjects.app, name="subject")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(jobs.app, name="jobs")
app.add_typer(serve.db_app, name="db")


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        app()
    except LearnloopError as exc:  # one a command did not catch itself: still one line, no traceback
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
        sys.exit(1)
