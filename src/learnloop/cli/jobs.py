"""learnloop jobs list | pause | resume | cancel."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from learnloop.cli.common import DbOpt, HomeOpt, actor, console, fail, open_services, settings_for
from learnloop.cli.tables import Table
from learnloop.domain import Job, JobStatus
from learnloop.ids import short_id

app = typer.Typer(
    help="Queued and running work (retrains): list it, pause it, resume it, cancel it.", no_args_is_help=True
)


def note(job: Job) -> str:
    """What a person wants to know of a job besides its status: who cancelled it and why, its
    error, what became of its candidate (``version 3 rejected: ...``), or its progress message."""
    if job.status == JobStatus.CANCELLED:
        return f"cancelled by {job.cancelled_by}: {job.cancel_reason}"
    summary = (job.result or {}).get("summary")  # a retrain's outcome (the message says "done" in older homes)
    return job.error or (str(summary) if summary else None) or job.message or job.last_error or ""


def status_text(job: Job) -> str:
    """The job's status; a retrain that ran to the end but whose candidate the gate rejected
    says so (it "succeeded" as a job, not as a retrain)."""
    verdict = (job.result or {}).get("verdict") or {}
    if job.status == JobStatus.SUCCEEDED and verdict.get("passed") is False:
        return "succeeded: candidate rejected"
    return job.status.value


def list_jobs(
    home: HomeOpt,
    database_url: DbOpt = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model's jobs.")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 20,
) -> None:
    """The newest jobs: status (queued, running, paused, ...), progress, attempts, who asked;
    who paused or cancelled one and why."""
    if not 1 <= limit <= 200:
        fail("--limit must be between 1 and 200")
    with open_services(settings_for(home, database_url)) as services:
        table = Table(
            title="jobs",
            caption="job: the end of its id (the start is the time it was made); jobs pause, resume and cancel take it",
        )
        for column in ("job", "model", "kind", "status", "progress", "attempts", "requested by", "created", "note"):
            table.add_column(column)
        for j in services.jobs.list(model, limit):
            table.add_row(
                short_id(j.id),
                j.model,
                j.kind,
                status_text(j),
                f"{j.progress:.0%}",
                str(j.attempts),
                escape(j.requested_by),
                f"{j.created_at:%Y-%m-%d %H:%M:%S}",
                escape(note(j)),
            )
        console.print(table)


def cancel(
    job_id: Annotated[str, typer.Argument(help="Job id, or its last 6 or more characters (learnloop jobs list).")],
    home: HomeOpt,
    database_url: DbOpt = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (kept on the job and its event).")] = None,
) -> None:
    """Cancel a queued or running job: a running retrain's fit is stopped by its worker and
    nothing of it is registered; the model can be retrained again at once.

    \b
    Examples:
      learnloop jobs cancel 967d84f35a2b            # the end of the id, as jobs list shows it
      learnloop jobs cancel 01a24739-644c-7000-8c25-967d84f35a2b --reason "wrong data"
    """
    with open_services(settings_for(home, database_url)) as services:
        job = services.jobs.cancel(job_id, actor=actor(), reason=reason or "cancelled from the CLI")
    console.print(f"job {job.id} ({job.kind} of {job.model}) {job.message}", markup=False)
    console.print(f"by {job.cancelled_by}: {job.cancel_reason}", markup=False)
    if job.worker is not None:  # it was running: its worker finds out at its next heartbeat
        console.print(f"worker {job.worker} stops its fit; nothing of it is registered", markup=False)


def pause(
    job_id: Annotated[str, typer.Argument(help="Job id, or its last 6 or more characters (learnloop jobs list).")],
    home: HomeOpt,
    database_url: DbOpt = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (kept on the job and its event).")] = None,
) -> None:
    """Pause a queued or running job: a running retrain's fit is stopped where it is by its
    worker (at its next heartbeat) and uses no CPU until resumed; it keeps its model's slot.

    \b
    Examples:
      learnloop jobs pause 967d84f35a2b --reason "the machine is needed for an hour"
      learnloop jobs resume 967d84f35a2b
    """
    with open_services(settings_for(home, database_url)) as services:
        job = services.jobs.pause(job_id, actor=actor(), reason=reason or "paused from the CLI")
    console.print(f"job {job.id} ({job.kind} of {job.model}) {job.message}", markup=False)


def resume(
    job_id: Annotated[str, typer.Argument(help="Job id, or its last 6 or more characters (learnloop jobs list).")],
    home: HomeOpt,
    database_url: DbOpt = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (kept on its event).")] = None,
) -> None:
    """Resume a paused job: a fit its worker still holds continues where it stopped; a job no
    worker holds (paused while queued, or its worker died) is queued again and says whether it
    restarts from scratch."""
    with open_services(settings_for(home, database_url)) as services:
        job = services.jobs.resume(job_id, actor=actor(), reason=reason or "resumed from the CLI")
    console.print(f"job {job.id} ({job.kind} of {job.model}) {job.status.value}: {job.message}", markup=False)


app.command("list")(list_jobs)
app.command()(pause)
app.command()(resume)
app.command()(cancel)
