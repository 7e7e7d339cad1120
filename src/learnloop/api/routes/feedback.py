from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from learnloop.api.deps import AdminDep, FeedbackDep, ReadDep, ServicesDep
from learnloop.api.openapi import problems
from learnloop.api.schemas import (
    FeedbackBatchCreate,
    FeedbackBatchResult,
    FeedbackItemResult,
    FeedbackPublic,
    FeedbackRetracted,
    ItemError,
)
from learnloop.feedback.items import FeedbackCreate

router = APIRouter(prefix="/v1/models/{model}/feedback", tags=["feedback"], responses=problems(404))


@router.post("", response_model=FeedbackPublic, status_code=201, responses=problems(409))
async def record_feedback(model: str, body: FeedbackCreate, _: FeedbackDep, services: ServicesDep) -> Response:
    """Store one feedback event; answered only once it is committed. A ``feedback_id`` makes it safe
    to retry: the same event again answers the stored one, a different one with that id is a 409."""
    await services.access.admit_subjects(model, [body.subject])
    stored = await services.feedback.record(model, body.to_input())
    # Serialised once, directly: a hot path (the schema above documents it).
    return Response(FeedbackPublic.of(stored).model_dump_json(), status_code=201, media_type="application/json")


@router.post("/batch", response_model=FeedbackBatchResult)
async def record_feedback_batch(
    model: str, body: FeedbackBatchCreate, request: Request, _: FeedbackDep, services: ServicesDep
) -> Response:
    """Store many events; each item is stored or rejected on its own, with its reason. A
    client gone by the time its batch is checked gets nothing stored."""

    async def still_connected() -> bool:
        return not await request.is_disconnected()

    await services.access.admit_subjects(model, [i.get("subject") for i in body.items])
    results = await services.feedback.record_many(model, body.items, proceed=still_connected)
    if results is None:
        return Response(status_code=499)  # nobody to answer
    items = [
        FeedbackItemResult(
            index=r.index,
            status="stored",
            feedback_id=r.feedback.id,
            client_feedback_id=r.feedback.client_id,
            kind=r.feedback.kind.value,
        )
        if r.feedback is not None
        else FeedbackItemResult(
            index=r.index,
            status="rejected",
            error=ItemError(code=r.error.code, field=r.error_field, detail=r.error.message) if r.error else None,
        )
        for r in results
    ]
    stored = sum(1 for item in items if item.status == "stored")
    summary = FeedbackBatchResult(stored=stored, rejected=len(items) - stored, items=items)
    return Response(summary.model_dump_json(), media_type="application/json")


@router.get("/{feedback_id}", response_model=FeedbackPublic)
async def get_feedback(model: str, feedback_id: str, _: ReadDep, services: ServicesDep) -> FeedbackPublic:
    """A stored event, by the server's id or the client's ``feedback_id``."""
    return FeedbackPublic.of(services.feedback.get(model, feedback_id))


@router.delete("/{feedback_id}", response_model=FeedbackRetracted, operation_id="retract_feedback")
async def retract_feedback(
    model: str, feedback_id: str, actor: AdminDep, services: ServicesDep, reason: str | None = None
) -> FeedbackRetracted:
    """Admin: take back a feedback event (by the server's id or the client's ``feedback_id``), one
    given by mistake. It counts nowhere from then on (the next snapshot, the retrain triggers, the
    online accuracy); a ``feedback_retracted`` event records it in the audit trail, and the
    client's id is free again. Snapshots already taken stay as they are (``in_snapshots`` names
    those that may hold it). 404 for an unknown or already retracted event."""
    retraction = await run_in_threadpool(
        services.feedback.retract, model, feedback_id, subject=None, actor=actor.name, reason=reason
    )
    return FeedbackRetracted.of(retraction)
