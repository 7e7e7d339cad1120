from __future__ import annotations

from fastapi import APIRouter

from learnloop.api.deps import QueryInt, ServicesDep
from learnloop.api.schemas import JobPublic

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("", response_model=list[JobPublic])
async def list_jobs(services: ServicesDep, model: str | None = None, limit: QueryInt = 20) -> list[JobPublic]:
    return [JobPublic.of(j) for j in services.jobs.list(model, min(max(limit, 1), 200))]


@router.get("/{job_id}", response_model=JobPublic)
async def get_job(job_id: str, services: ServicesDep) -> JobPublic:
    return JobPublic.of(services.jobs.get(job_id))
