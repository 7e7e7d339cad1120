"""The ``learnloop`` command."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.markup import escape

from learnloop import __version__
from learnloop.cli import (
    answers,
    asking,
    catalog,
    consume,
    drift,
    explain,
    fairness,
    families,
    gc,
    generate,
    jobs,
    keys,
    models,
    patterns,
    replay,
    report,
    rollouts,
    serve,
    subjects,
    tune,
    value,
    webhooks,
)
from learnloop.cli.common import err_console
from learnloop.errors import LearnloopError

app = typer.Typer(
    name="learnloop",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(show: bool) -> None:
    if show:
        typer.echo(f"learnloop {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Serve a model, take feedback, retrain, prove it is better, roll it out.

    \b
    Start with:
      learnloop demo                      # a model, a server and a drifting stream, in a minute
      learnloop init --model sentiment --data reviews.csv --label-names 0=negative,1=positive
      learnloop predict "The battery lasts all day"
      learnloop status
    The home is $LEARNLOOP_HOME, else ./learnloop-home; --model may be left out when it holds one model.
    """


app.command("models")(catalog.list_models)
app.command()(answers.predict)
app.command()(answers.feedback)
app.command()(models.init)
app.command()(models.delete)
app.command()(serve.serve)
app.command()(serve.worker)
app.command()(consume.consume)
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
app.command()(patterns.patterns)
app.command()(fairness.fairness)
app.command()(explain.explain)
app.command()(explain.weights)
app.command()(asking.ask)
app.command()(generate.generate)
app.command()(report.report)
app.command()(report.compare)
app.command()(families.families)
app.command()(tune.tune)
app.command()(tune.studies)
app.command()(value.value)
app.command()(gc.gc)
app.add_typer(rollouts.app, name="rollout")
app.add_typer(subjects.app, name="subject")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(jobs.app, name="jobs")
app.add_typer(keys.app, name="keys")
app.add_typer(serve.db_app, name="db")


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        app()
    except LearnloopError as exc:  # one a command did not catch itself: still one line, no traceback
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
        sys.exit(1)
