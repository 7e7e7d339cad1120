from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import ValidationError as PydanticValidationError

from learnloop.api.deps import ServicesDep
from learnloop.api.schemas import (
    FeedbackBatchCreate,
    FeedbackBatchResult,
    FeedbackCreate,
    FeedbackItemResult,
    FeedbackPublic,
    ItemError,
)
from learnloop.domain import FeedbackInput
from learnloop.errors import LearnloopError, ValidationError

router = APIRouter(prefix="/v1/models/{model}/feedback", tags=["feedback"])


def _input(body: FeedbackCreate) -> FeedbackInput:
    return FeedbackInput(**body.model_dump())


@router.post("", response_model=FeedbackPublic, status_code=201)
async def record_feedback(model: str, body: FeedbackCreate, services: ServicesDep) -> Response:
    """Store one feedback event; answered only once it is committed."""
    stored = await services.feedback.record(model, _input(body))
    # Serialised once, directly: a hot path (the schema above documents it).
    return Response(FeedbackPublic.of(stored).model_dump_json(), status_code=201, media_type="application/json")


def _parse(index: int, raw: dict[str, object]) -> FeedbackInput | LearnloopError:
    try:
        return _input(FeedbackCreate.model_validate(raw))
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "item"
        return ValidationError(f"{field}: {first['msg']}", field=f"items.{index}.{field}")


@router.post("/batch", response_model=FeedbackBatchResult)
async def record_feedback_batch(model: str, body: FeedbackBatchCreate, services: ServicesDep) -> Response:
    """Store many events; each item is stored or rejected on its own, with its reason."""
    parsed = [_parse(i, raw) for i, raw in enumerate(body.items)]
    valid = [(i, p) for i, p in enumerate(parsed) if isinstance(p, FeedbackInput)]
    results = await services.feedback.record_many(model, [p for _, p in valid])
    items: list[FeedbackItemResult | None] = [None] * len(parsed)
    for (i, _), result in zip(valid, results, strict=True):
        if result.feedback is not None:
            fb = result.feedback
            items[i] = FeedbackItemResult(
                index=i, status="stored", feedback_id=fb.id, client_feedback_id=fb.client_id, kind=fb.kind.value
            )
        else:
            assert result.error is not None
            err = result.error
            items[i] = FeedbackItemResult(
                index=i,
                status="rejected",
                error=ItemError(
                    code=err.code,
                    field=f"items.{i}.{err.field}" if err.field else None,
                    detail=err.message,
                ),
            )
    for i, p in enumerate(parsed):
        if isinstance(p, LearnloopError):
            services.feedback.count_rejected(model, p)
            items[i] = FeedbackItemResult(
                index=i,
                status="rejected",
                error=ItemError(code=p.code, field=p.field, detail=p.message),
            )
    done = [item for item in items if item is not None]
    stored = sum(1 for item in done if item.status == "stored")
    summary = FeedbackBatchResult(stored=stored, rejected=len(done) - stored, items=done)
    return Response(summary.model_dump_json(), media_type="application/json")


@router.get("/{feedback_id}", response_model=FeedbackPublic)
async def get_feedback(model: str, feedback_id: str, services: ServicesDep) -> FeedbackPublic:
    """A stored event, by the server's id or the client's ``feedback_id``."""
    return FeedbackPublic.of(services.feedback.get(model, feedback_id))
