"""Logging answers made elsewhere: a generative model whose responses come from another
system (Claude, Gemini, an OpenAI model, a vLLM server) logs each prompt and response here,
and feedback then attaches to the prediction id it gets back.

A logged generation is a row of the same prediction log as a classifier's answer
(``IngestWriter.log_predictions``): ``text`` is the prompt as one text (``prompt_text`` of the
conversation, so two answers to one prompt have the same text), ``answer`` the ``GenAnswer``
(response, finish reason, token counts, the source model, the conversation) plus the client's
``metadata``. Personal data is scrubbed from the prompt, every turn and the response, as the
model's policy says. Limits: the prompt (all turns) up to ``generation.max_prompt_chars``, the
response up to the larger of ``Limits.max_text_chars`` and ``generation.max_response_chars``;
NUL characters and unpaired surrogates are refused. Only a generative model takes them.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from learnloop.clock import Clock
from learnloop.config import Limits
from learnloop.curation.pii import scrub_text
from learnloop.domain import Model
from learnloop.errors import LearnloopError, ValidationError
from learnloop.feedback.ingest import IngestWriter
from learnloop.feedback.intake import check_metadata, check_storable, hash_subject
from learnloop.ids import new_id
from learnloop.routing.cache import ModelCache
from learnloop.tasks.generation import GenAnswer, Message, prompt_text
from learnloop.telemetry import Metrics

VALIDATE_IN_THREAD_ITEMS = 32  # batches larger than this are checked and scrubbed off the event loop


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class Usage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int | None = Field(default=None, ge=0, strict=True)
    completion_tokens: int | None = Field(default=None, ge=0, strict=True)


class GenerationCreate(BaseModel):
    """One answer made elsewhere, as a client logs it: a ``prompt`` or chat ``messages``."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(default=None, min_length=1, description="The prompt (one user turn) ...")
    messages: list[MessageIn] | None = Field(
        default=None, min_length=1, description="... or the conversation answered (at least one user turn)."
    )
    response: str = Field(description="What the model answered.")
    source_model: str | None = Field(
        default=None, min_length=1, max_length=128, description="Who answered: 'claude-sonnet', 'gpt-4o', ..."
    )
    usage: Usage | None = None
    latency_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    finish_reason: str | None = Field(default=None, min_length=1, max_length=32)
    subject: str | None = Field(default=None, max_length=256, description="Optional user id (stored hashed).")
    metadata: dict[str, Any] | None = None

    @field_validator("latency_ms", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, bool) or (value is not None and not isinstance(value, int | float)):
            raise ValueError("latency_ms must be a number")
        return value

    @model_validator(mode="after")
    def _one_prompt(self) -> GenerationCreate:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give either a prompt or messages")
        if self.messages is not None and not any(m.role == "user" for m in self.messages):
            raise ValueError("messages need at least one user turn")
        return self

    def conversation(self) -> tuple[Message, ...]:
        if self.messages is not None:
            return tuple(Message(m.role, m.content) for m in self.messages)
        return (Message("user", self.prompt or ""),)


def parse_generation(raw: Mapping[str, Any]) -> GenerationCreate:
    """One raw item, or a ``ValidationError`` naming the offending field."""
    try:
        return GenerationCreate.model_validate(raw)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "item"
        raise ValidationError(f"{field}: {first['msg']}", field=field) from None


@dataclass(frozen=True)
class LoggedGeneration:
    prediction_id: str
    model: str
    version: int
    route: str


@dataclass(frozen=True)
class GenerationItemResult:
    """Item ``index`` of a batch: what it was logged as, or the error that refused it."""

    index: int
    logged: LoggedGeneration | None
    error: LearnloopError | None

    @property
    def error_field(self) -> str | None:
        if self.error is None or self.error.field is None:
            return None
        return f"items.{self.index}.{self.error.field}"


class GenerationLog:
    """Logs answers a generative model's application got elsewhere, through the prediction
    log; answered once queued (buffered log) or committed (durable log)."""

    def __init__(self, cache: ModelCache, ingest: IngestWriter, clock: Clock, metrics: Metrics, limits: Limits) -> None:
        self.cache = cache
        self.ingest = ingest
        self.clock = clock
        self.metrics = metrics
        self.limits = limits

    def _generative(self, name: str) -> Model:
        model = self.cache.route(name).model
        if model.task != "generation":
            raise ValidationError(
                f"model {name!r} is a {model.task} model: generations are logged to a generative model "
                "(task generation)",
                field="model",
            )
        return model

    def _row(
        self, model: Model, item: GenerationCreate | Mapping[str, Any], prediction_id: str | None = None
    ) -> dict[str, Any]:
        """A checked, scrubbed prediction-log row of one generation (not yet routed), under
        ``prediction_id`` (a new id by default)."""
        gen = item if isinstance(item, GenerationCreate) else parse_generation(item)
        messages = gen.conversation()
        field = "prompt" if gen.prompt is not None else "messages"
        for i, message in enumerate(messages):
            check_storable(message.content, field if gen.prompt is not None else f"messages.{i}.content")
        text = prompt_text(messages)
        limit = model.policy.generation.max_prompt_chars
        if not text.strip():
            raise ValidationError("the prompt is empty", field=field)
        if len(text) > limit:
            raise ValidationError(
                f"the prompt has {len(text)} characters; the limit (max_prompt_chars) is {limit}", field=field
            )
        response_limit = max(self.limits.max_text_chars, model.policy.generation.max_response_chars)
        if len(gen.response) > response_limit:
            raise ValidationError(
                f"response has {len(gen.response)} characters; the limit is {response_limit}", field="response"
            )
        check_storable(gen.response, "response")
        for name in ("source_model", "finish_reason"):
            value = getattr(gen, name)
            if value is not None:
                check_storable(value, name)
        if gen.metadata is not None:
            check_metadata(gen.metadata, self.limits.max_metadata_bytes, self.limits.max_metadata_depth)
        mode = model.policy.curation.pii_scrub
        scrubbed = tuple(Message(m.role, scrub_text(m.content, mode)) for m in messages)
        answer = GenAnswer(
            response=scrub_text(gen.response, mode),
            finish_reason=gen.finish_reason,
            prompt_tokens=gen.usage.prompt_tokens if gen.usage else None,
            completion_tokens=gen.usage.completion_tokens if gen.usage else None,
            source_model=gen.source_model,
            messages=scrubbed,
        ).to_answer()
        if gen.metadata is not None:
            answer["metadata"] = gen.metadata
        latency = gen.latency_ms if gen.latency_ms is not None else 0.0
        return {
            "id": prediction_id or new_id(),
            "model": model.name,
            "text": prompt_text(scrubbed),
            "answer": orjson.dumps(answer).decode(),
            "subject": hash_subject(gen.subject),
            "latency_ms": float(latency) if math.isfinite(latency) else 0.0,
            "_key": gen.subject,
        }

    def _rows(
        self,
        name: str,
        items: Sequence[GenerationCreate | Mapping[str, Any]],
        ids: Sequence[str | None] | None = None,
    ) -> list[dict[str, Any] | LearnloopError]:
        model = self._generative(name)
        out: list[dict[str, Any] | LearnloopError] = []
        for item, prediction_id in zip(items, ids or [None] * len(items), strict=True):
            try:
                out.append(self._row(model, item, prediction_id))
            except LearnloopError as exc:
                out.append(exc)
        return out

    def _log(self, name: str, rows: list[dict[str, Any]]) -> tuple[list[LoggedGeneration], Future[None] | None]:
        """Route each row (the version that answers the model's traffic now) and queue them."""
        route = self.cache.route(name)
        now = self.clock.now()
        logged = []
        for row in rows:
            key = row.pop("_key") or row["id"]
            served, route_name = route.pick(key)
            row.update(version=served.version, route=route_name, created_at=now)
            logged.append(LoggedGeneration(row["id"], name, served.version, route_name))
        committed = self.ingest.log_predictions(rows) if rows else None
        if committed is None:
            self._count(logged)
        else:
            committed.add_done_callback(lambda f: None if f.exception() else self._count(logged))
        return logged, committed

    def _count(self, logged: Sequence[LoggedGeneration]) -> None:
        for entry in logged:
            self.metrics.predictions.labels(entry.model, str(entry.version), entry.route).inc()

    async def log(self, name: str, item: GenerationCreate) -> LoggedGeneration:
        (row,) = self._rows(name, [item])
        if isinstance(row, LearnloopError):
            raise row
        (logged,), committed = self._log(name, [row])
        if committed is not None:
            await asyncio.wrap_future(committed)
        return logged

    def log_sync(self, name: str, item: GenerationCreate | Mapping[str, Any]) -> LoggedGeneration:
        """For the CLI and scripts: log one generation and wait until it is written (durable log)."""
        (row,) = self._rows(name, [item])
        if isinstance(row, LearnloopError):
            raise row
        (logged,), committed = self._log(name, [row])
        if committed is not None:
            committed.result()
        return logged

    async def log_many(
        self, name: str, items: Sequence[Mapping[str, Any]], ids: Sequence[str | None] | None = None
    ) -> list[GenerationItemResult]:
        """Each item logged or refused on its own (parsed here); one queueing of the valid ones.
        ``ids`` names their prediction ids (a stream consumer's events carry them)."""
        if len(items) > self.limits.max_batch_items:
            raise ValidationError(
                f"batch has {len(items)} items; the limit is {self.limits.max_batch_items}", field="items"
            )
        if len(items) > VALIDATE_IN_THREAD_ITEMS:
            rows = await asyncio.to_thread(self._rows, name, items, ids)
        else:
            rows = self._rows(name, items, ids)
        logged, committed = self._log(name, [r for r in rows if not isinstance(r, LearnloopError)])
        if committed is not None:
            await asyncio.wrap_future(committed)
        done = iter(logged)
        return [
            GenerationItemResult(i, None, r)
            if isinstance(r, LearnloopError)
            else GenerationItemResult(i, next(done), None)
            for i, r in enumerate(rows)
        ]
