"""An OpenAI-compatible surface over learnloop's generative models: an application that uses
the official ``openai`` client changes only its ``base_url`` (``http://HOST/openai/v1``). A
completion's ``id`` is its learnloop prediction id, so feedback attaches to it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from learnloop.api.deps import PredictDep, ServicesDep, check_model
from learnloop.api.openai_schemas import ChatCompletionCreate, ModelCard, ModelList
from learnloop.api.openapi import problems
from learnloop.api.streaming import finish_when_done, finished_or_cancelled
from learnloop.domain import Scope
from learnloop.errors import LearnloopError
from learnloop.feedback.generate import Generated, Generation, GenerationService

router = APIRouter(prefix="/openai/v1", tags=["openai"])

FINISH = {"stop": "stop", "length": "length", "cancelled": "stop"}


@router.get("/models", response_model=ModelList, operation_id="list_openai_models")
async def list_models(principal: PredictDep, services: ServicesDep) -> ModelList:
    """The generative models, as OpenAI's model listing."""
    cards = [
        ModelCard(id=m.name, created=int(m.created_at.timestamp()))
        for m in services.registry.list_models()
        if m.task == "generation" and principal.may(Scope.PREDICT, m.name)
    ]
    return ModelList(data=cards)


@router.post("/chat/completions", operation_id="create_chat_completion", responses=problems(404, 409))
async def chat_completions(
    body: ChatCompletionCreate, request: Request, principal: PredictDep, services: ServicesDep
) -> Response:
    """A chat completion (``stream`` as OpenAI's chunks); ``id`` is the prediction id."""
    await check_model(request, principal, Scope.PREDICT, body.model)
    service = services.generation
    generation = service.start(body.model, body.to_input())
    created = int(time.time())
    if body.stream:
        usage = body.stream_options is not None and body.stream_options.include_usage
        return StreamingResponse(
            _chunks(service, generation, created, usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    generated = await service.finish_async(generation, await finished_or_cancelled(request, generation))
    completion = {
        "id": generated.prediction_id,
        "object": "chat.completion",
        "created": created,
        "model": generated.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": generated.text},
                "finish_reason": FINISH[generated.finish_reason],
                "logprobs": None,
            }
        ],
        "usage": _usage(generated),
        "system_fingerprint": f"{generated.model}-v{generated.version}",
    }
    return Response(orjson.dumps(completion), media_type="application/json")


def _usage(generated: Generated) -> dict[str, int]:
    return {
        "prompt_tokens": generated.prompt_tokens,
        "completion_tokens": generated.completion_tokens,
        "total_tokens": generated.prompt_tokens + generated.completion_tokens,
    }


async def _chunks(
    service: GenerationService, generation: Generation, created: int, include_usage: bool
) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        body = {
            "id": generation.prediction_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": generation.model.name,
            "system_fingerprint": f"{generation.model.name}-v{generation.version}",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **extra,
        }
        return b"data: " + orjson.dumps(body) + b"\n\n"

    done = False
    try:
        yield chunk({"role": "assistant", "content": ""})
        try:
            async for delta in generation.deltas():
                yield chunk({"content": delta})
            generated = await service.finish_async(generation, await generation.handle.wait())
        except LearnloopError as exc:
            done = True
            yield b"data: " + orjson.dumps({"error": {"message": exc.message, "type": exc.code}}) + b"\n\n"
            return
        done = True
        yield chunk({}, FINISH[generated.finish_reason])
        if include_usage:
            body = orjson.loads(chunk({}))
            body["choices"] = []
            body["usage"] = _usage(generated)
            yield b"data: " + orjson.dumps(body) + b"\n\n"
        yield b"data: [DONE]\n\n"
    finally:
        if not done:
            finish_when_done(service, generation)
