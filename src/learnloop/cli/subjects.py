"""learnloop subject export | erase."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from learnloop.cli.common import (
    ArtifactOpt,
    DbOpt,
    HomeOpt,
    actor,
    console,
    fail,
    open_services,
    settings_for,
    write_file,
)

app = typer.Typer(help="A subject's data: export it, erase it (the right to be forgotten).", no_args_is_help=True)
SubjectArg = Annotated[str, typer.Argument(help="The subject as your system names it (learnloop stores it hashed).")]


@app.command()
def export(
    subject: SubjectArg,
    home: HomeOpt,
    out: Annotated[Path, typer.Option("--out", help="JSON file to write.")],
    database_url: DbOpt = None,
) -> None:
    """Write everything stored about a subject (predictions and feedback, every model) as JSON."""
    with open_services(settings_for(home, database_url)) as services:
        data = services.privacy.export(subject)
    write_file(out, json.dumps(data, indent=2, ensure_ascii=False).encode())
    console.print(f"wrote {len(data['predictions'])} predictions and {len(data['feedback'])} feedback events to {out}")


@app.command()
def erase(
    subject: SubjectArg,
    home: HomeOpt,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do it: erasure cannot be undone.")] = False,
) -> None:
    """Erase a subject from predictions, feedback and snapshots; retrain without them."""
    if not yes:
        fail("erasure cannot be undone; add --yes to erase")
    with open_services(settings_for(home, database_url, artifact_url=artifact_url)) as services:
        report = services.privacy.erase(subject, actor=actor(), reason=reason or "erasure requested from the CLI")
    console.print(
        f"erased subject {report.subject}...: {report.predictions} predictions, {report.feedback} feedback events, "
        f"{report.snapshot_rows} snapshot rows in {len(report.snapshots)} snapshots"
    )
    for model, versions in report.versions.items():
        job = report.retrains.get(model)
        console.print(
            f"  {model}: versions trained on the data {versions}"
            + (
                f"; retrain queued (job {job})"
                if job
                else "; a retrain was already queued"
                if model in report.retrains
                else ""
            )
        )
