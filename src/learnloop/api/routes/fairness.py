"""Fairness of a classifier's versions across the groups of its requests' metadata."""

from __future__ import annotations

from fastapi import APIRouter, Query

from learnloop.api.deps import ReadDep, ServicesDep
from learnloop.api.fairness_schemas import FairnessPublic
from learnloop.api.openapi import problems

router = APIRouter(tags=["fairness"], responses=problems(404, 422))


@router.get("/v1/models/{model}/fairness", response_model=FairnessPublic, operation_id="get_fairness")
def fairness(
    model: str,
    _: ReadDep,
    services: ServicesDep,
    fields: str | None = Query(
        default=None,
        max_length=1000,
        description="Comma-separated metadata fields instead of the policy's fairness_fields.",
    ),
) -> FairnessPublic:
    """Per version, on the newest labelled feedback (and on the golden set, where its rows
    carry the fields: ``versions[].golden``): each group's accuracy, selection and
    true-positive rates, and the demographic parity and equal opportunity differences between
    groups, with 95% bootstrap intervals and sample sizes. A plain ``def``: the bootstrap is
    CPU work, run in the thread pool."""
    names = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    return FairnessPublic.of(services.fairness.report(model, names))
