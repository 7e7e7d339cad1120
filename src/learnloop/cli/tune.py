"""learnloop tune: Optuna searches a family's parameters within a time budget; learnloop
studies: the studies a model has (tunes and retrains' searches), one in full."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from learnloop.cli.common import (
    ArtifactOpt,
    DbOpt,
    HomeOpt,
    ModelOpt,
    actor,
    console,
    open_services,
    settings_for,
    write_file,
)
from learnloop.cli.models import progress_bar
from learnloop.cli.tables import Table

if TYPE_CHECKING:
    from learnloop.training.studies import StudyView

SHOWN_TRIALS = 10


def tune(
    home: HomeOpt,
    model: ModelOpt,
    budget: Annotated[float, typer.Option("--budget", min=1, help="Seconds the search may take.")] = 120,
    family: Annotated[str | None, typer.Option("--family", help="The family to tune (default: the model's).")] = None,
    trials: Annotated[int | None, typer.Option("--trials", min=1, help="Stop after this many trials too.")] = None,
    study: Annotated[
        str | None, typer.Option("--study", help="Study name (default MODEL:FAMILY); workers naming one share it.")
    ] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start the study again on the data up to now.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write trials.png and importance.png into this directory.")
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Make the best parameters (and the family) what the next retrains train.")
    ] = False,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
) -> None:
    """Search a family's parameters with Optuna for at most --budget seconds.

    Trials score the forward-chaining folds a retrain's selection uses (the training data
    before the gate's evidence), each fold reported so a trial behind the others is pruned.
    The study lives in the model's database: another `learnloop tune` on the same study (on
    PostgreSQL, from any machine) adds its trials to it, on the same data. --apply makes the
    study's best trial the model's family and parameters, which its next retrains train (the
    change is checked as init --param is, and recorded as a params_changed event).

    \b
    Examples:
      learnloop tune --model sentiment --budget 120
      learnloop tune --model sentiment --budget 120 --apply
      learnloop tune --model sentiment --family incremental --budget 60 --out tune/
    """
    settings = settings_for(home, database_url, artifact_url=artifact_url, isolate_training=False)
    with open_services(settings) as services, progress_bar() as progress:
        task = progress.add_task("curating the data", total=1.0)

        def said(done: float, message: str) -> None:
            progress.update(task, completed=done, description=message)

        outcome = services.studies.tune(
            model,
            budget_seconds=budget,
            family=family,
            study=study,
            fresh=fresh,
            progress=said,
            **({"max_trials": trials} if trials else {}),
        )
        if apply:
            applied, view = services.studies.apply_best(model, outcome.result.study, actor=actor())
        else:
            view = services.studies.study(model, outcome.result.study)
    found = outcome.result
    console.print(
        f"study [bold]{escape(found.study)}[/]: {found.trials} trials "
        f"({found.pruned} pruned, {found.failed} failed) on "
        f"{outcome.judged} examples in {outcome.folds} forward-chaining folds; best accuracy {100 * found.score:.1f}%",
        soft_wrap=True,
    )
    console.print(trials_table(view))
    console.print(
        "best parameters: " + escape(", ".join(f"{k}={v}" for k, v in sorted(found.params.items()))), soft_wrap=True
    )
    if view.importance:
        console.print("importance: " + ", ".join(f"{k} {v:.2f}" for k, v in view.importance.items()), soft_wrap=True)
    if apply:
        console.print(
            f"[green]applied[/]: {escape(model)}'s next retrains train {escape(applied.family)} with "
            + escape(", ".join(f"{k}={v}" for k, v in sorted(applied.params.items()))),
            soft_wrap=True,
        )
    if out is not None:
        from learnloop.reports.study_plots import importance_png, trials_png

        write_file(out / "trials.png", trials_png(view))
        write_file(out / "importance.png", importance_png(view))
        console.print(f"pictures: {out / 'trials.png'}, {out / 'importance.png'}", soft_wrap=True)


def trials_table(view: StudyView) -> Table:
    """The best trials (finished ones by score), with what each tried."""
    finished = sorted((t for t in view.trials if t.value is not None), key=lambda t: -(t.value or 0.0))
    table = Table(title=f"best {min(SHOWN_TRIALS, len(finished))} of {len(view.trials)} trials", title_justify="left")
    for column in ("trial", "accuracy", "fold accuracies", "seconds", "parameters"):
        table.add_column(column)
    for t in finished[:SHOWN_TRIALS]:
        table.add_row(
            str(t.number) + (" (best)" if t.number == view.best_trial else ""),
            f"{100 * (t.value or 0.0):.1f}%",
            " ".join(f"{100 * s:.1f}%" for s in t.fold_scores),
            "-" if t.seconds is None else f"{t.seconds:.1f}",
            ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(t.params.items())),
        )
    return table


def studies(
    home: HomeOpt,
    model: ModelOpt,
    study: Annotated[str | None, typer.Option("--study", help="Show this study's trials.")] = None,
    database_url: DbOpt = None,
) -> None:
    """List a model's parameter studies (learnloop tune, retrains' searches), or one in full."""
    with open_services(settings_for(home, database_url)) as services:
        if study is not None:
            view = services.studies.study(model, study)
            console.print(trials_table(view))
            console.print("best parameters: " + escape(str(view.best_params)), soft_wrap=True)
            return
        table = Table(title=f"studies of {model}", title_justify="left")
        for column in ("study", "kind", "family", "trials", "best accuracy", "started"):
            table.add_column(column)
        for s in services.studies.studies(model):
            best = "-" if s.best_value is None else f"{100 * s.best_value:.1f}%"
            started = s.started.strftime("%m-%d %H:%M") if s.started else "-"
            table.add_row(s.name, s.kind, s.family, str(s.trials), best, started)
        console.print(table)
