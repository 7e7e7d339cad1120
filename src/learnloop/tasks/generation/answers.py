"""What a generated answer is, as the prediction log stores it.

A generation's logged row holds the prompt as text (``predictions.text``: the conversation
rendered by ``prompt_text``, so two answers to one prompt have the same text) and, as its
``answer`` JSON, what ``GenAnswer`` holds: the response, why it ended, token counts, the model
that made it (an external provider's name, or none for an in-process version), the
conversation it answered and the sampling parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant
    content: str

    def to_json(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def messages_of(prompt: str | None, messages: Sequence[Mapping[str, Any]] | None) -> tuple[Message, ...]:
    """The conversation a request asks about: its ``messages``, or its ``prompt`` as one user turn."""
    if messages is not None:
        return tuple(Message(str(m["role"]), str(m["content"])) for m in messages)
    return (Message("user", prompt or ""),)


def turns(messages: Sequence[Message]) -> list[dict[str, str]]:
    """The conversation as plain ``{"role", "content"}`` turns (what the LLM stack reads)."""
    return [m.to_json() for m in messages]


def prompt_text(messages: Sequence[Message]) -> str:
    """The prompt as one text (what the prediction log stores as the input, what drift and
    "the same prompt" compare): a lone user turn is its content; a conversation is one
    ``role: content`` line block per turn."""
    if len(messages) == 1 and messages[0].role == "user":
        return messages[0].content
    return "\n".join(f"{m.role}: {m.content}" for m in messages)


@dataclass(frozen=True)
class GenAnswer:
    response: str
    finish_reason: str | None = None  # "stop" | "length" | "cancelled" | a provider's own word
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    source_model: str | None = None  # who made it, when made elsewhere ("claude-sonnet", "gpt-4o")
    messages: tuple[Message, ...] = ()
    params: dict[str, Any] | None = None  # max_new_tokens, temperature, top_p, seed

    def to_answer(self) -> dict[str, Any]:
        return {
            "response": self.response,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "source_model": self.source_model,
            "messages": [m.to_json() for m in self.messages],
            "params": self.params,
        }

    @classmethod
    def of(cls, answer: Mapping[str, Any]) -> GenAnswer:
        return cls(
            response=str(answer.get("response", "")),
            finish_reason=answer.get("finish_reason"),
            prompt_tokens=answer.get("prompt_tokens"),
            completion_tokens=answer.get("completion_tokens"),
            source_model=answer.get("source_model"),
            messages=messages_of(None, answer.get("messages") or []),
            params=answer.get("params"),
        )
