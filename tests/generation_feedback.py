"""Feedback events on generated answers, for pure-logic tests of the generation task's curation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from learnloop.domain import Feedback, FeedbackEvent, FeedbackKind, Served
from learnloop.tasks.generation.answers import GenAnswer, Message

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_ids = count()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def served(
    prediction_id: str,
    response: str,
    *,
    prompt: str = "How do I reset my password?",
    finish_reason: str | None = "stop",
    messages: list[Message] | None = None,
    version: int = 1,
    when: float = 0.0,
) -> Served:
    """A logged generated answer (the prompt as one user turn unless ``messages`` are given)."""
    conversation = tuple(messages) if messages is not None else (Message("user", prompt),)
    text = prompt if messages is None else "\n".join(f"{m.role}: {m.content}" for m in messages)
    answer = GenAnswer(response=response, finish_reason=finish_reason, messages=conversation)
    return Served(prediction_id, version, "champion", text, answer.to_answer(), at(when))


def event(
    kind: str,
    payload: dict[str, Any],
    *,
    on: Served | None = None,
    related: Served | None = None,
    prediction_id: str | None = None,
    subject: str | None = None,
    when: float = 1.0,
    feedback_id: str | None = None,
) -> FeedbackEvent:
    """One feedback event; ``on``: the answer it is about (its prediction id unless ``prediction_id``)."""
    pid = prediction_id if prediction_id is not None else (on.prediction_id if on is not None else None)
    fb = Feedback(
        id=feedback_id or f"f{next(_ids):06d}",
        model="npc",
        kind=FeedbackKind(kind),
        prediction_id=pid,
        client_id=None,
        payload=payload,
        subject=subject,
        metadata=None,
        created_at=at(when),
    )
    return FeedbackEvent(fb, on, None, related)


def rating(on: Served, value: int, **kw: Any) -> FeedbackEvent:
    return event("rating", {"rating": value}, on=on, **kw)


def thumbs(on: Served, up: bool, **kw: Any) -> FeedbackEvent:
    return event("thumbs", {"thumbs": "up" if up else "down"}, on=on, **kw)


def correction(on: Served, text: str, **kw: Any) -> FeedbackEvent:
    return event("correction", {"correction": text}, on=on, **kw)


def prefer(chosen: Served, rejected: Served, strength: float = 1.0, **kw: Any) -> FeedbackEvent:
    payload = {"rejected_prediction_id": rejected.prediction_id, "strength": strength}
    return event("preference", payload, on=chosen, related=rejected, **kw)


def standalone(prompt: str, chosen: str, rejected: str, strength: float = 1.0, **kw: Any) -> FeedbackEvent:
    payload = {"prompt": prompt, "chosen": chosen, "rejected": rejected, "strength": strength}
    return event("preference", payload, **kw)


def implicit(on: Served, signal: str, value: float | bool = True, **kw: Any) -> FeedbackEvent:
    return event("implicit", {"signal": signal, "value": value}, on=on, **kw)
