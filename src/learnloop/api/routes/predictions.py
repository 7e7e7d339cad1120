from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Response

from learnloop.api.deps import PredictDep, ServicesDep
from learnloop.api.openapi import problems
from learnloop.api.schemas import (
    PredictBatchRequest,
    PredictBatchResponse,
    PredictionPublic,
    PredictRequest,
)
from learnloop.feedback.service import prediction_json

router = APIRouter(prefix="/v1/models/{model}", tags=["predictions"], responses=problems(404, 409))


@router.post("/predict", response_model=PredictionPublic)
async def predict(model: str, body: PredictRequest, _: PredictDep, services: ServicesDep) -> Response:
    """Classify a text with the version serving it (the champion, or a rollout's arm); the answer
    is logged, and its ``prediction_id`` takes feedback."""
    result = await services.predictions.predict_async(model, body.text, body.subject, body.metadata)
    # Serialised directly: this is the hot path, and the schema above documents it.
    return Response(prediction_json(result), media_type="application/json")


@router.post("/predict/batch", response_model=PredictBatchResponse)
async def predict_batch(
    model: str, body: PredictBatchRequest, _: PredictDep, services: ServicesDep
) -> PredictBatchResponse:
    """Classify several texts at once, answered in their order, each logged as by ``predict``."""
    items = body.items
    results = await services.predictions.predict_many_async(
        model, [i.text for i in items], [i.subject for i in items], [i.metadata for i in items]
    )
    return PredictBatchResponse(items=[PredictionPublic(**asdict(r)) for r in results])
