"""Generating in process: ``POST /v1/models/{model}/generate``, whole or streamed (SSE)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from learnloop.api.deps import PredictDep, ServicesDep
from learnloop.api.generation_schemas import GeneratePublic, GenerateRequest
from learnloop.api.openapi import problems
from learnloop.api.streaming import finish_when_done, finished_or_cancelled
from learnloop.errors import LearnloopError
from learnloop.feedback.generate import Generation, GenerationService

router = APIRouter(prefix="/v1/models/{model}", tags=["generation"], responses=problems(404, 409))

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
STREAM_DOC = (
    'With "stream": true, server-sent events: `prediction` (prediction_id, model, version, route) first, '
    "then `token` events ({text}), then `done` (the whole answer, as without streaming)."
)


@router.post(
    "/generate",
    response_model=GeneratePublic,
    responses={200: {"content": {"text/event-stream": {}}, "description": STREAM_DOC}},
)
async def generate(
    model: str, body: GenerateRequest, request: Request, _: PredictDep, services: ServicesDep
) -> Response:
    """Answer a prompt or a conversation with the model's serving version; the answer is logged
    and its ``prediction_id`` takes feedback. A client that leaves stops its generation."""
    service = services.generation
    generation = service.start(model, body.to_input())
    if body.stream:
        return StreamingResponse(_events(service, generation), media_type="text/event-stream", headers=SSE_HEADERS)
    result = await finished_or_cancelled(request, generation)
    generated = await service.finish_async(generation, result)
    return Response(GeneratePublic.of(generated).model_dump_json(), media_type="application/json")


def sse(event: str, data: object) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _events(service: GenerationService, generation: Generation) -> AsyncIterator[bytes]:
    done = False
    try:
        yield sse(
            "prediction",
            {
                "prediction_id": generation.prediction_id,
                "model": generation.model.name,
                "version": generation.version,
                "route": generation.route,
            },
        )
        try:
            async for delta in generation.deltas():
                yield sse("token", {"text": delta})
            generated = await service.finish_async(generation, await generation.handle.wait())
        except LearnloopError as exc:  # the engine failed or closed mid-answer: nothing was answered
            done = True
            yield sse("error", {"code": exc.code, "detail": exc.message})
            return
        done = True
        yield sse("done", GeneratePublic.of(generated).model_dump(mode="json"))
    finally:
        if not done:  # the client left (or the stream failed): stop generating, log what was said
            finish_when_done(service, generation)
