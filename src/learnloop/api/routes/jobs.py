"""Jobs (retrains): list and read them; pause, resume and cancel them (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from learnloop.api.deps import AdminDep, PageLimit, ReadDep, ServicesDep, check_model
from learnloop.api.openapi import problems
from learnloop.api.schemas import ActionRequest, JobPublic
from learnloop.domain import Scope

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("", response_model=list[JobPublic])
async def list_jobs(
    request: Request, principal: ReadDep, services: ServicesDep, model: str | None = None, limit: PageLimit = 20
) -> list[JobPublic]:
    """The newest jobs (retrains, ...), of one model or of all, with their state and outcome."""
    if model is not None:
        await check_model(request, principal, Scope.READ, model)
    jobs = services.jobs.list(model, limit)
    return [JobPublic.of(j) for j in jobs if principal.may(Scope.READ, j.model)]


@router.get("/{job_id}", response_model=JobPublic, responses=problems(404))
async def get_job(job_id: str, request: Request, principal: ReadDep, services: ServicesDep) -> JobPublic:
    """A job, by its id or a unique end of it (as ``learnloop jobs list`` shows it; 422 when several
    jobs share the end): its state, progress, outcome and, for a retrain, the version it made and
    the verdict."""
    job = services.jobs.find(job_id)
    await check_model(request, principal, Scope.READ, job.model)
    return JobPublic.of(job)


@router.post("/{job_id}/cancel", response_model=JobPublic, responses=problems(404, 409))
async def cancel_job(
    job_id: str, actor: AdminDep, services: ServicesDep, body: ActionRequest | None = None
) -> JobPublic:
    """Cancel a queued or running job, by its id or a unique end of it (a running retrain's fit is
    stopped, nothing of it is registered); its model can be retrained again at once. 409 once the
    job has finished."""
    reason = body.reason if body else None
    return JobPublic.of(services.jobs.cancel(job_id, actor=actor.name, reason=reason or "cancelled through the API"))


@router.post("/{job_id}/pause", response_model=JobPublic, responses=problems(404, 409))
async def pause_job(
    job_id: str, actor: AdminDep, services: ServicesDep, body: ActionRequest | None = None
) -> JobPublic:
    """Pause a queued or running job, by its id or a unique end of it: a running retrain's fit
    is stopped where it is by its worker at its next heartbeat and uses no CPU until resumed
    (it keeps its memory and its model's slot); a queued job is not started. 409 unless queued
    or running."""
    reason = body.reason if body else None
    return JobPublic.of(services.jobs.pause(job_id, actor=actor.name, reason=reason or "paused through the API"))


@router.post("/{job_id}/resume", response_model=JobPublic, responses=problems(404, 409))
async def resume_job(
    job_id: str, actor: AdminDep, services: ServicesDep, body: ActionRequest | None = None
) -> JobPublic:
    """Resume a paused job: a fit its worker still holds continues where it stopped (status
    ``running``); a job no worker holds is queued again (status ``queued``), and its message
    says whether it restarts from scratch. 409 unless paused."""
    reason = body.reason if body else None
    return JobPublic.of(services.jobs.resume(job_id, actor=actor.name, reason=reason or "resumed through the API"))
