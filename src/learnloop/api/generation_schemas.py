"""Request and response schemas of generative models: logging answers made elsewhere
(``POST /v1/models/{model}/generations`` and ``/generations/batch``; the item's own schema is
``feedback.generations.GenerationCreate``, shared with the batch's per-item parse) and
generating in process (``POST /v1/models/{model}/generate``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from learnloop.api.schemas import ItemError
from learnloop.feedback.generate import Generated, GenerateInput
from learnloop.feedback.generations import GenerationItemResult, LoggedGeneration
from learnloop.tasks.generation import Message


class GenerationBatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[dict[str, Any]] = Field(min_length=1, description="Generations, each as in POST /generations.")


class GenerationLogged(BaseModel):
    prediction_id: str = Field(description="Feedback on this answer names it.")
    model: str
    version: int
    route: str

    @classmethod
    def of(cls, logged: LoggedGeneration) -> GenerationLogged:
        return cls(prediction_id=logged.prediction_id, model=logged.model, version=logged.version, route=logged.route)


class GenerationItemPublic(BaseModel):
    """One item of a batch: logged (with its prediction id) or rejected, with the reason."""

    index: int
    status: Literal["logged", "rejected"]
    prediction_id: str | None = None
    version: int | None = None
    route: str | None = None
    error: ItemError | None = None

    @classmethod
    def of(cls, result: GenerationItemResult) -> GenerationItemPublic:
        if result.logged is not None:
            logged = result.logged
            return cls(
                index=result.index,
                status="logged",
                prediction_id=logged.prediction_id,
                version=logged.version,
                route=logged.route,
            )
        error = result.error
        return cls(
            index=result.index,
            status="rejected",
            error=ItemError(code=error.code, field=result.error_field, detail=error.message) if error else None,
        )


class GenerationBatchResult(BaseModel):
    logged: int
    rejected: int
    items: list[GenerationItemPublic]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class GenerateRequest(BaseModel):
    """``POST /v1/models/{model}/generate``: a ``prompt`` or chat ``messages``."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(default=None, description="The prompt, as one user turn ...")
    messages: list[ChatMessage] | None = Field(
        default=None, min_length=1, description="... or the conversation so far (at least one user turn)."
    )
    max_new_tokens: int | None = Field(
        default=None, ge=1, le=32_768, description="Default: 128, capped by the model's policy (max_new_tokens)."
    )
    temperature: float = Field(default=0.7, ge=0, le=5, allow_inf_nan=False, description="0: greedy.")
    top_p: float = Field(default=1.0, gt=0, le=1, allow_inf_nan=False)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1, description="Reproducible sampling.")
    stream: bool = Field(default=False, description="Server-sent events: the prediction id first, then the text.")
    subject: str | None = Field(default=None, max_length=256, description="Optional user id (stored hashed).")
    metadata: dict[str, Any] | None = None

    def to_input(self) -> GenerateInput:
        messages = None if self.messages is None else tuple(Message(m.role, m.content) for m in self.messages)
        return GenerateInput(
            prompt=self.prompt,
            messages=messages,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            subject=self.subject,
            metadata=self.metadata,
        )


class GeneratePublic(BaseModel):
    prediction_id: str = Field(description="Feedback on this answer names it.")
    model: str
    version: int
    route: str
    text: str
    finish_reason: str = Field(description="stop (the model ended), length (max_new_tokens), cancelled")
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float

    @classmethod
    def of(cls, g: Generated) -> GeneratePublic:
        return cls(**asdict(g))
