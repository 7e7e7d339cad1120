"""Logging answers made elsewhere, for a generative model (``backend external``)."""

from __future__ import annotations

from fastapi import APIRouter

from learnloop.api.deps import FeedbackDep, ServicesDep
from learnloop.api.generation_schemas import (
    GenerationBatchCreate,
    GenerationBatchResult,
    GenerationItemPublic,
    GenerationLogged,
)
from learnloop.api.openapi import problems
from learnloop.feedback.generations import GenerationCreate

router = APIRouter(prefix="/v1/models/{model}/generations", tags=["generations"], responses=problems(404))


@router.post("", response_model=GenerationLogged, status_code=201)
async def log_generation(model: str, body: GenerationCreate, _: FeedbackDep, services: ServicesDep) -> GenerationLogged:
    """Log one prompt and the response made elsewhere; feedback attaches to the prediction id."""
    return GenerationLogged.of(await services.generations.log(model, body))


@router.post("/batch", response_model=GenerationBatchResult)
async def log_generations(
    model: str, body: GenerationBatchCreate, _: FeedbackDep, services: ServicesDep
) -> GenerationBatchResult:
    """Log many; each item is logged or rejected on its own, with its reason."""
    items = [GenerationItemPublic.of(r) for r in await services.generations.log_many(model, body.items)]
    logged = sum(1 for item in items if item.status == "logged")
    return GenerationBatchResult(logged=logged, rejected=len(items) - logged, items=items)
