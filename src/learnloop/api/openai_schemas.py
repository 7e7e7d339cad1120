"""The slice of OpenAI's chat completions API an application that uses the official ``openai``
client sends and reads (https://platform.openai.com/docs/api-reference/chat): enough to change
only its ``base_url`` to ``http://HOST/openai/v1``. Fields a client may send that learnloop
does not act on are accepted and ignored, as OpenAI-compatible servers do; ``n`` > 1 and tools
are refused with a clear 422."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from learnloop.feedback.generate import GenerateInput
from learnloop.tasks.generation import Message


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]]

    @field_validator("content")
    @classmethod
    def _text(cls, value: str | list[dict[str, Any]]) -> str:
        """The message's text: a string, or its content parts of type ``text`` joined."""
        if isinstance(value, str):
            return value
        parts = []
        for part in value:
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ValueError("only text content parts are supported")
            parts.append(part["text"])
        return "".join(parts)

    def text(self) -> str:
        assert isinstance(self.content, str)  # made so by the validator
        return self.content


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="The learnloop model's name (GET /openai/v1/models lists them).")
    messages: list[OpenAIMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32_768)
    temperature: float = Field(default=1.0, ge=0, le=2, allow_inf_nan=False)
    top_p: float = Field(default=1.0, gt=0, le=1, allow_inf_nan=False)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    n: int = Field(default=1, ge=1, le=1, description="One answer per request.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(default=None, max_length=256, description="Kept (hashed) as the subject.")
    metadata: dict[str, Any] | None = None
    tools: list[Any] | None = None

    @field_validator("tools")
    @classmethod
    def _no_tools(cls, value: list[Any] | None) -> list[Any] | None:
        if value:
            raise ValueError("tools are not supported")
        return value

    def to_input(self) -> GenerateInput:
        messages = tuple(Message("system" if m.role == "developer" else m.role, m.text()) for m in self.messages)
        return GenerateInput(
            messages=messages,
            max_new_tokens=self.max_completion_tokens or self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            subject=self.user,
            metadata=self.metadata,
        )


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "learnloop"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
