"""Liveness (``/health``), readiness (``/ready``) and Prometheus metrics. The first two
answer from memory, in microseconds, whatever state the database is in."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from learnloop.api.deps import ReadDep, ServicesDep
from learnloop.api.schemas import Health, ReadinessPublic

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health(services: ServicesDep) -> Health:
    """Live: 200 while the process can answer (``status`` says "degraded" when something is
    wrong; ``/ready`` is the probe that takes a replica out of rotation)."""
    return Health(**services.health())


@router.get("/ready", response_model=ReadinessPublic, responses={503: {"model": ReadinessPublic}})
async def ready(services: ServicesDep) -> JSONResponse:
    """Ready: 200, or 503 while the database is unreachable, gone or stalled past the
    threshold, or a model's champion cannot load."""
    state = services.readiness()
    body = ReadinessPublic(status="ready" if state.ready else "not_ready", checks=state.checks)
    return JSONResponse(body.model_dump(), status_code=200 if state.ready else 503)


@router.get("/metrics", include_in_schema=False)
def metrics(_: ReadDep, services: ServicesDep) -> Response:  # reads the job queue: a worker thread, not the loop
    services.refresh_gauges()
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
