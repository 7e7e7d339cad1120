"""Feedback intake rules: which shape of event is which kind, and what is valid.

Shapes accepted (``subject``, ``metadata`` and a client ``feedback_id`` are optional on all):

* ``{"prediction_id", "label"}``: a label correction;
* ``{"prediction_id", "thumbs": "up"|"down"}``;
* ``{"prediction_id", "rating": 1..5}``;
* ``{"text", "label"}``: a standalone labelled example.

A prediction id that is not (yet) in the log is accepted: the event is kept and joined when
the prediction arrives.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from learnloop.domain import FeedbackKind, Model
from learnloop.errors import ValidationError
from learnloop.ids import new_id


@dataclass(frozen=True)
class FeedbackInput:
    prediction_id: str | None = None
    label: str | None = None
    thumbs: str | None = None
    rating: int | None = None
    text: str | None = None
    subject: str | None = None
    metadata: dict[str, Any] | None = None
    feedback_id: str | None = None


def hash_subject(subject: str | None) -> str | None:
    """Subjects are stored hashed: the same user maps to the same key, the id is not kept."""
    if subject is None:
        return None
    return hashlib.sha256(subject.encode("utf-8")).hexdigest()[:32]


def feedback_kind(item: FeedbackInput) -> FeedbackKind:
    signals = [name for name in ("label", "thumbs", "rating") if getattr(item, name) is not None]
    if item.prediction_id is None:
        if item.text is not None and signals == ["label"]:
            return FeedbackKind.EXAMPLE
        raise ValidationError(
            "feedback needs either a prediction_id with one of label, thumbs or rating, or a text with a label",
            field="prediction_id",
        )
    if item.text is not None:
        raise ValidationError("give either a prediction_id or a text, not both", field="text")
    if len(signals) != 1:
        raise ValidationError(
            f"feedback on a prediction carries exactly one of label, thumbs or rating; got {signals or 'none'}",
            field=signals[1] if len(signals) > 1 else "label",
        )
    return FeedbackKind(signals[0])


def to_row(
    model: Model,
    item: FeedbackInput,
    now: datetime,
    *,
    max_text_chars: int,
    max_metadata_bytes: int,
) -> dict[str, Any]:
    kind = feedback_kind(item)
    if item.prediction_id is not None:
        try:
            uuid.UUID(item.prediction_id)
        except ValueError:
            raise ValidationError(
                f"prediction_id {item.prediction_id!r} is not a UUID", field="prediction_id"
            ) from None
    if item.label is not None:
        model.check_label(item.label)
    if item.thumbs is not None and item.thumbs not in ("up", "down"):
        raise ValidationError("thumbs must be 'up' or 'down'", field="thumbs")
    if item.rating is not None and not 1 <= item.rating <= 5:
        raise ValidationError("rating must be an integer from 1 to 5", field="rating")
    if item.text is not None:
        check_text(item.text, max_text_chars)
    if item.metadata is not None and len(orjson.dumps(item.metadata)) > max_metadata_bytes:
        raise ValidationError(f"metadata exceeds {max_metadata_bytes} bytes of JSON", field="metadata")
    if item.feedback_id is not None and not 1 <= len(item.feedback_id) <= 128:
        raise ValidationError("feedback_id must be 1-128 characters", field="feedback_id")
    return {
        "id": new_id(),
        "model": model.name,
        "client_id": item.feedback_id,
        "prediction_id": item.prediction_id,
        "kind": kind.value,
        "label": item.label,
        "thumbs": item.thumbs,
        "rating": item.rating,
        "text": item.text,
        "subject": hash_subject(item.subject),
        "metadata": item.metadata,
        "created_at": now,
    }


def check_text(text: str, max_chars: int, field: str = "text") -> str:
    if not text.strip():
        raise ValidationError("text is empty", field=field)
    if len(text) > max_chars:
        raise ValidationError(f"text has {len(text)} characters; the limit is {max_chars}", field=field)
    return text
