"""learnloop predict | feedback: ask a classifier and answer it back (or take an answer back),
from the terminal.

Both work on the home directly, through the same services as the HTTP API: an answer is
logged like any other (its prediction id takes feedback), and feedback is checked, stored and
counted towards the next retrain like any other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from learnloop.cli.common import (
    ArtifactOpt,
    DbOpt,
    HomeOpt,
    ModelOpt,
    actor,
    console,
    err_console,
    fail,
    open_services,
    settings_for,
)
from learnloop.domain import FeedbackKind
from learnloop.errors import ValidationError


def predict(
    texts: Annotated[list[str], typer.Argument(help="The text(s) to classify, one answer each.", show_default=False)],
    home: HomeOpt,
    model: ModelOpt,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
    subject: Annotated[
        str | None, typer.Option("--subject", help="Who asks (sticky routing in a rollout, erasure).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per answer, as the API answers.")] = False,
) -> None:
    """Classify texts with the version serving the model (the champion, or a rollout's arm); each
    answer is logged, and its prediction id takes feedback.

    \b
    Examples:
      learnloop predict "The battery lasts all day"
      learnloop predict --model sentiment "Great food" "Cold and late"
      learnloop predict --json "Great food"
    """
    from learnloop.feedback.service import prediction_json

    # durable: each answer is committed before its id is printed (feedback may follow at once)
    settings = settings_for(home, database_url, artifact_url=artifact_url, prediction_log="durable")
    with open_services(settings) as services:
        services.ingest.start()
        for text in texts:
            result = services.predictions.predict(model, text, subject)
            if as_json:
                typer.echo(prediction_json(result).decode())
                continue
            shown = ", ".join(f"{label} {p:.2f}" for label, p in result.probabilities.items())
            console.print(
                f"[bold]{escape(result.label)}[/] ({escape(shown)}) "
                f"[dim]version {result.version}, {result.route}; prediction id {result.prediction_id}[/]",
                soft_wrap=True,
            )
    if not as_json:
        console.print(
            f"[dim]correct an answer: learnloop feedback {result.prediction_id} --label LABEL "
            f"(or --thumbs up|down, --rating 1-5)[/]",
            soft_wrap=True,
        )


def feedback(
    home: HomeOpt,
    model: ModelOpt,
    prediction_id: Annotated[
        str | None, typer.Argument(help="The answer's prediction id (learnloop predict prints it).")
    ] = None,
    database_url: DbOpt = None,
    label: Annotated[str | None, typer.Option("--label", help="The label the answer should have been.")] = None,
    thumbs: Annotated[str | None, typer.Option("--thumbs", help="up or down.")] = None,
    rating: Annotated[int | None, typer.Option("--rating", min=1, max=5, help="1 to 5.")] = None,
    correction: Annotated[
        str | None, typer.Option("--correction", help="Generation: the text the answer should have been.")
    ] = None,
    text: Annotated[
        str | None, typer.Option("--text", help="A standalone labelled example (with --label, no prediction id).")
    ] = None,
    signal: Annotated[str | None, typer.Option("--signal", help="An implicit signal's name (with --value).")] = None,
    value: Annotated[str | None, typer.Option("--value", help="The signal's value: a number, true or false.")] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="Who gives it.")] = None,
    feedback_id: Annotated[
        str | None, typer.Option("--feedback-id", help="Your idempotency key: sent twice, stored once.")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="The kind you mean (label, thumbs, rating, ...); checked against the fields."),
    ] = None,
    retract: Annotated[
        str | None,
        typer.Option(
            "--retract",
            metavar="FEEDBACK_ID",
            help="Take back a stored event given by mistake (its feedback id, or your --feedback-id): it counts "
            "nowhere from then on.",
        ),
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="With --retract: why, for the audit trail.")] = None,
) -> None:
    """Give feedback on an answer (or a labelled example): stored, checked and counted towards
    the next retrain like feedback through the API; or take an event back with --retract.

    \b
    Examples:
      learnloop feedback PREDICTION_ID --label negative
      learnloop feedback PREDICTION_ID --thumbs down
      learnloop feedback --text "Cold and late" --label negative
      learnloop feedback --retract FEEDBACK_ID --reason "clicked the wrong label"
    """
    import asyncio  # here, not at the top: learnloop's other commands start without it

    from learnloop.feedback.intake import feedback_kind
    from learnloop.feedback.items import parse_item

    raw: dict[str, Any] = {
        "prediction_id": prediction_id, "label": label, "thumbs": thumbs, "rating": rating,
        "correction": correction, "text": text, "signal": signal, "value": _signal_value(value),
        "subject": subject, "feedback_id": feedback_id,
    }  # fmt: skip
    if retract is not None or reason is not None:
        _retract(home, model, database_url, retract, reason, given=[k for k, v in raw.items() if v is not None])
        return
    with open_services(settings_for(home, database_url)) as services:
        item = parse_item({k: v for k, v in raw.items() if v is not None})
        _check_kind(kind, feedback_kind(item))
        services.ingest.start()
        stored = asyncio.run(services.feedback.record(model, item))
    on = f" on prediction {stored.prediction_id}" if stored.prediction_id else ""
    console.print(
        f"stored {stored.kind.value} feedback {stored.id}{on}: {escape(json.dumps(stored.payload))}", soft_wrap=True
    )


def _retract(
    home: Path, model: str, database_url: str | None, feedback_id: str | None, reason: str | None,
    *, given: list[str],
) -> None:  # fmt: skip
    if feedback_id is None:
        fail("--reason goes with --retract FEEDBACK_ID")
    if given:
        fail(f"--retract takes back a stored event: give it alone, without {', '.join(given)}")
    with open_services(settings_for(home, database_url)) as services:
        done = services.feedback.retract(
            model, feedback_id, subject=None, actor=actor(), reason=reason or "retracted from the CLI"
        )
    held = f"; {len(done.in_snapshots)} training snapshot(s) taken since may hold it" if done.in_snapshots else ""
    console.print(f"retracted {done.feedback.kind.value} feedback {done.feedback.id}{held}", soft_wrap=True)


def _signal_value(value: str | None) -> float | bool | str | None:
    if value is None or value.lower() not in ("true", "false"):
        try:
            return None if value is None else float(value)
        except ValueError:
            return value  # refused by the check, naming the field
    return value.lower() == "true"


def _check_kind(given: str | None, made: FeedbackKind) -> None:
    """``--kind`` is a check of the fields, not a field: an unknown kind is a warning (the fields
    decide), a known one that the fields do not make an error."""
    if given is None:
        return
    known = [k.value for k in FeedbackKind]
    if given not in known:
        err_console.print(
            f"[yellow]warning:[/] unknown feedback kind {escape(given)!r} (kinds: {', '.join(known)}); "
            f"the fields given make {made.value} feedback",
            soft_wrap=True,
        )
    elif given != made.value:
        raise ValidationError(f"--kind {given} given, but the fields given make {made.value} feedback", field="kind")
