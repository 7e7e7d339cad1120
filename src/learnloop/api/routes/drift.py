"""Drift of a model's inputs and outputs: the latest checks, and a check run now."""

from __future__ import annotations

from fastapi import APIRouter, Query

from learnloop.api.deps import AdminDep, ReadDep, ServicesDep
from learnloop.api.openapi import problems
from learnloop.api.schemas import DriftCheckPublic

router = APIRouter(tags=["drift"], responses=problems(404))
PREFIX = "/v1/models/{model}/drift"


@router.get(PREFIX, response_model=list[DriftCheckPublic], operation_id="list_drift_checks")
async def history(
    model: str, _: ReadDep, services: ServicesDep, limit: int = Query(default=20, ge=1, le=200)
) -> list[DriftCheckPublic]:
    """The model's latest drift checks, newest first, each with every detector's result."""
    return [DriftCheckPublic.of(c) for c in services.drift.history(model, limit)]


@router.post(PREFIX + "/check", response_model=DriftCheckPublic, operation_id="check_drift", responses=problems(409))
def check_now(model: str, actor: AdminDep, services: ServicesDep) -> DriftCheckPublic:
    """Check the champion's newest answers now (stored, exported and alarmed like a periodic check).
    A plain ``def``: the check is CPU work, so it runs in the thread pool, off the event loop."""
    return DriftCheckPublic.of(services.drift.check(model))
