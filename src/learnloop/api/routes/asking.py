"""The answers most worth asking users about (active learning)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from learnloop.api.ask_schemas import AskPublic
from learnloop.api.deps import LabelDep, ServicesDep
from learnloop.api.openapi import problems
from learnloop.feedback.asking import MAX_LIMIT, MAX_WINDOW
from learnloop.tasks.classification.active import Strategy

router = APIRouter(tags=["models"])


@router.get("/v1/models/{model}/ask", response_model=AskPublic, responses=problems(404))
def ask(
    model: str,
    _: LabelDep,
    services: ServicesDep,
    limit: int = Query(default=20, ge=1, le=MAX_LIMIT),
    strategy: Strategy = Query(default="margin", description="margin (smallest first) or entropy (largest first)."),
    window: int = Query(default=1000, ge=1, le=MAX_WINDOW, description="Newest unlabelled answers considered."),
) -> AskPublic:
    """The champion's newest unlabelled answers most worth a label, most uncertain first, no two
    near-identical texts. A plain ``def``: ranking is CPU work, so it runs off the event loop."""
    return AskPublic.of(services.active.ask(model, limit=limit, strategy=strategy, window=window))
