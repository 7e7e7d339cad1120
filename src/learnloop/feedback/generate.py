"""Generating answers in process: route the request to a version of a generative model, let
that version's engine generate (on its own thread, batched with other requests), and log the
answer in the prediction log like any other, so feedback attaches to its prediction id.

Checked before anything is queued: the model generates (``WrongTaskError`` otherwise), the
prompt (all turns) is within the policy's ``max_prompt_chars``, ``max_new_tokens`` within its
``max_new_tokens``, the texts are storable (no NUL, no lone surrogate). A full engine queue is
an ``OverloadedError`` (503 with Retry-After). A generation whose client leaves is cancelled
(``Generation.cancel``) and logged with finish reason ``cancelled`` and what it had said.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import orjson

from learnloop.clock import Clock
from learnloop.config import Limits
from learnloop.curation.pii import scrub_text
from learnloop.domain import Model
from learnloop.errors import ValidationError, WrongTaskError
from learnloop.families.generation import GenerationHandle, GenerationRequest, GenerationResult
from learnloop.feedback.ingest import IngestWriter
from learnloop.feedback.intake import check_metadata, check_storable, hash_subject
from learnloop.ids import new_id
from learnloop.routing.cache import ModelCache
from learnloop.tasks.generation import GenAnswer, Message, prompt_text
from learnloop.telemetry import Metrics

DEFAULT_MAX_NEW_TOKENS = 128


@dataclass(frozen=True)
class GenerateInput:
    """What a client asks: a ``prompt`` or a conversation (``messages``), sampling settings
    (``max_new_tokens`` None: the smaller of 128 and the policy's cap; ``temperature`` 0 is
    greedy), and who asks (``subject``, optional: keeps a user on one arm of a rollout)."""

    prompt: str | None = None
    messages: tuple[Message, ...] | None = None
    max_new_tokens: int | None = None
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int | None = None
    subject: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Generated:
    prediction_id: str
    model: str
    version: int
    route: str
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float


@dataclass
class Generation:
    """One generation under way: its prediction id and route are known before its first token."""

    prediction_id: str
    model: Model
    version: int
    route: str
    handle: GenerationHandle
    conversation: tuple[Message, ...]
    inputs: GenerateInput
    params: dict[str, Any]
    started: float = field(default_factory=time.perf_counter)

    def cancel(self) -> None:
        self.handle.cancel()

    async def deltas(self) -> AsyncIterator[str]:
        """The answer's text as it is generated."""
        async for delta in self.handle:
            yield delta


class GenerationService:
    def __init__(self, cache: ModelCache, ingest: IngestWriter, clock: Clock, metrics: Metrics, limits: Limits) -> None:
        self.cache = cache
        self.ingest = ingest
        self.clock = clock
        self.metrics = metrics
        self.limits = limits

    def start(self, name: str, inputs: GenerateInput) -> Generation:
        """Check the request, pick the version that answers it and queue it on that version's
        engine; nothing is logged yet (``finish`` does)."""
        route = self.cache.route(name)
        model = route.model
        if model.task != "generation":
            raise WrongTaskError(
                f"model {name!r} is a {model.task} model: ask it with POST /v1/models/{name}/predict", field="model"
            )
        conversation = self._conversation(model, inputs)
        cap = model.policy.generation.max_new_tokens
        max_new = inputs.max_new_tokens if inputs.max_new_tokens is not None else min(DEFAULT_MAX_NEW_TOKENS, cap)
        if not 1 <= max_new <= cap:
            raise ValidationError(
                f"max_new_tokens is {max_new}; this model's limit (policy max_new_tokens) is {cap}",
                field="max_new_tokens",
            )
        if inputs.metadata is not None:
            check_metadata(inputs.metadata, self.limits.max_metadata_bytes, self.limits.max_metadata_depth)
        prediction_id = new_id()
        served, route_name = route.pick(inputs.subject if inputs.subject is not None else prediction_id)
        request = GenerationRequest(
            prompt=None,
            messages=[m.to_json() for m in conversation],
            max_new_tokens=max_new,
            temperature=inputs.temperature,
            top_p=inputs.top_p,
            seed=inputs.seed,
        )
        handle = served.generative.submit(request)
        params = {"max_new_tokens": max_new, "temperature": inputs.temperature, "top_p": inputs.top_p}
        if inputs.seed is not None:
            params["seed"] = inputs.seed
        return Generation(prediction_id, model, served.version, route_name, handle, conversation, inputs, params)

    def _conversation(self, model: Model, inputs: GenerateInput) -> tuple[Message, ...]:
        if (inputs.prompt is None) == (inputs.messages is None):
            raise ValidationError("give either a prompt or messages", field="prompt")
        if inputs.messages is not None:
            if not any(m.role == "user" for m in inputs.messages):
                raise ValidationError("messages need at least one user turn", field="messages")
            conversation = inputs.messages
            fields = [f"messages.{i}.content" for i in range(len(conversation))]
        else:
            conversation = (Message("user", inputs.prompt or ""),)
            fields = ["prompt"]
        for message, name in zip(conversation, fields, strict=True):
            check_storable(message.content, name)
        text = prompt_text(conversation)
        if not text.strip():
            raise ValidationError("the prompt is empty", field=fields[0])
        limit = model.policy.generation.max_prompt_chars
        if len(text) > limit:
            raise ValidationError(
                f"the prompt has {len(text)} characters; this model's limit (policy max_prompt_chars) is {limit}",
                field=fields[0] if len(fields) == 1 else "messages",
            )
        return conversation

    async def generate(self, name: str, inputs: GenerateInput) -> Generated:
        """Start, wait for the whole answer (cancelled if this task is), log it."""
        generation = self.start(name, inputs)
        try:
            result = await generation.handle.wait()
        except asyncio.CancelledError:
            generation.cancel()
            raise
        return await self.finish_async(generation, result)

    def generate_sync(self, name: str, inputs: GenerateInput) -> Generated:
        """For the CLI and scripts: the same, blocking this thread."""
        generation = self.start(name, inputs)
        return self.finish(generation, generation.handle.result())

    def finish(self, generation: Generation, result: GenerationResult) -> Generated:
        """Log a generation that ended and say what it answered (with a durable prediction
        log: once its row is committed)."""
        generated, committed = self._log(generation, result)
        if committed is not None:
            committed.result()
        return generated

    async def finish_async(self, generation: Generation, result: GenerationResult) -> Generated:
        """``finish`` for the event loop: a durable log's commit is awaited, not blocked on."""
        generated, committed = self._log(generation, result)
        if committed is not None:
            await asyncio.wrap_future(committed)
        return generated

    def _log(self, generation: Generation, result: GenerationResult) -> tuple[Generated, Future[None] | None]:
        latency_ms = (time.perf_counter() - generation.started) * 1000
        model = generation.model
        mode = model.policy.curation.pii_scrub
        scrubbed = tuple(Message(m.role, scrub_text(m.content, mode)) for m in generation.conversation)
        answer = GenAnswer(
            response=scrub_text(result.text, mode),
            finish_reason=result.finish_reason,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            messages=scrubbed,
            params=generation.params,
        ).to_answer()
        if generation.inputs.metadata is not None:
            answer["metadata"] = generation.inputs.metadata
        row = {
            "id": generation.prediction_id,
            "model": model.name,
            "version": generation.version,
            "route": generation.route,
            "text": prompt_text(scrubbed),
            "answer": orjson.dumps(answer).decode(),
            "subject": hash_subject(generation.inputs.subject),
            "created_at": self.clock.now(),
            "latency_ms": latency_ms,
        }
        committed = self.ingest.log_predictions([row])
        self.metrics.predictions.labels(model.name, str(generation.version), generation.route).inc()
        return Generated(
            generation.prediction_id,
            model.name,
            generation.version,
            generation.route,
            result.text,
            result.finish_reason,
            result.prompt_tokens,
            result.completion_tokens,
            latency_ms,
        ), committed
