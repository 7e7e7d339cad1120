from __future__ import annotations

from fastapi import APIRouter, Request

from learnloop.api.deps import AdminDep, QueryInt, ReadDep, ServicesDep, check_model
from learnloop.api.openapi import problems
from learnloop.api.schemas import ActionRequest, JobPublic
from learnloop.domain import Scope

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("", response_model=list[JobPublic])
async def list_jobs(
    request: Request, principal: ReadDep, services: ServicesDep, model: str | None = None, limit: QueryInt = 20
) -> list[JobPublic]:
    """The newest jobs (retrains, ...), of one model or of all, with their state and outcome."""
    if model is not None:
        await check_model(request, principal, Scope.READ, model)
    jobs = services.jobs.list(model, min(max(limit, 1), 200))
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
