"""Feedback intake rules: which shape of event is which kind, and what is valid.

Shapes accepted (``subject``, ``metadata`` and a client ``feedback_id`` are optional on all):

* ``{"prediction_id", "label"}``: a label correction;
* ``{"prediction_id", "thumbs": "up"|"down"}``;
* ``{"prediction_id", "rating": 1..5}``;
* ``{"text", "label"}``: a standalone labelled example.

A prediction id that is not (yet) in the log is accepted: the event is kept and joined when
the prediction arrives.

A client ``feedback_id`` names one event (an idempotency key). Sent again with the same event
(a retry), the stored event is the answer; with a different event, ``IdempotencyConflictError``
(409 ``idempotency_conflict``): the first event stays, the second is not stored. Inside one
batch, an item whose key an earlier item carries is refused (``duplicate_in_batch``); the
first is stored.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from learnloop.curation.pii import scrub_text
from learnloop.domain import Feedback, FeedbackInput, FeedbackKind, Model
from learnloop.errors import DuplicateInBatchError, LearnloopError, ValidationError
from learnloop.ids import new_id
from learnloop.nesting import value_too_deep
from learnloop.tasks import get_task


def hash_subject(subject: str | None) -> str | None:
    """Subjects are stored hashed: the same user maps to the same key, the id is not kept."""
    if subject is None:
        return None
    return hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()[:32]


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
    max_metadata_depth: int,
) -> dict[str, Any]:
    """A validated feedback row: the shape gives the kind, the model's task checks what the
    event says and builds its payload, every free text in it is checked and scrubbed."""
    kind = feedback_kind(item)
    prediction_id = None if item.prediction_id is None else canonical_prediction_id(item.prediction_id)

    def text_rule(value: str, field: str) -> str:
        return scrub_text(check_text(value, max_text_chars, field), model.policy.curation.pii_scrub)

    payload = get_task(model.task).feedback_payload(model, kind, item, text_rule)
    if item.metadata is not None:
        check_metadata(item.metadata, max_metadata_bytes, max_metadata_depth)
    if item.feedback_id is not None:
        if not 1 <= len(item.feedback_id) <= 128:
            raise ValidationError("feedback_id must be 1-128 characters", field="feedback_id")
        check_storable(item.feedback_id, "feedback_id")
    return {
        "id": new_id(),
        "model": model.name,
        "client_id": item.feedback_id,
        "prediction_id": prediction_id,
        "kind": kind.value,
        "payload": payload,
        "subject": hash_subject(item.subject),
        "metadata": item.metadata,
        "created_at": now,
    }


# What a client's idempotency key stands for: every field of the event the client chose, as
# ``to_row`` stores it (the task's payload, its texts scrubbed; the subject hashed).
IDEMPOTENT_FIELDS = ("kind", "prediction_id", "payload", "subject", "metadata")


def event_payload(event: Feedback | Mapping[str, Any]) -> tuple[Any, ...]:
    """What a client key stands for, of a stored event or of a row made by ``to_row``."""
    if isinstance(event, Feedback):
        return tuple(getattr(event, name) for name in IDEMPOTENT_FIELDS)
    return tuple(event[name] for name in IDEMPOTENT_FIELDS)


def same_event(stored: Feedback | Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    """Whether a new event (a row made by ``to_row``) repeats the one stored under the same
    client ``feedback_id``: only then is answering the stored event an honest retry."""
    return event_payload(stored) == event_payload(row)


def flag_repeated_keys(rows: list[dict[str, Any] | LearnloopError]) -> None:
    """In one batch, an item whose ``feedback_id`` an earlier item carries is refused in place
    (``DuplicateInBatchError``, saying whether it was the same event): the first is stored."""
    first: dict[str, int] = {}
    for i, row in enumerate(rows):
        if isinstance(row, LearnloopError) or row["client_id"] is None:
            continue
        earlier = first.setdefault(row["client_id"], i)
        if earlier != i:
            kept = rows[earlier]
            assert not isinstance(kept, LearnloopError)
            rows[i] = DuplicateInBatchError(row["client_id"], earlier, same=same_event(kept, row))


def check_storable(value: str, field: str) -> str:
    """Refuse strings that a database cannot store: NUL characters (PostgreSQL text) and lone
    surrogates (not encodable as UTF-8), both of which JSON can carry."""
    if "\x00" in value:
        raise ValidationError("contains a NUL character", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("contains an unpaired surrogate (not valid Unicode text)", field=field) from None
    return value


def check_text(text: str, max_chars: int, field: str = "text") -> str:
    if not text.strip():
        raise ValidationError("text is empty", field=field)
    if len(text) > max_chars:
        raise ValidationError(f"text has {len(text)} characters; the limit is {max_chars}", field=field)
    return check_storable(text, field)


def canonical_prediction_id(value: str) -> str:
    """Prediction ids are stored in one spelling (lower-case, dashed), so any spelling a
    client sends joins its prediction."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValidationError(f"prediction_id {value!r} is not a UUID", field="prediction_id") from None


def check_metadata(metadata: dict[str, Any], max_bytes: int, max_depth: int) -> None:
    """Metadata must be strict JSON (no NaN or Infinity) of storable strings, within a size
    and a nesting depth (``{"a": 1}`` is 1 deep)."""
    if value_too_deep(metadata, max_depth):
        raise ValidationError(f"metadata is nested deeper than {max_depth} levels", field="metadata")

    def visit(value: Any) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError("metadata holds NaN or Infinity, which JSON cannot carry", field="metadata")
        if isinstance(value, str):
            check_storable(value, "metadata")
        elif isinstance(value, dict):
            for key, inner in value.items():
                check_storable(str(key), "metadata")
                visit(inner)
        elif isinstance(value, list):
            for inner in value:
                visit(inner)

    visit(metadata)
    if len(json.dumps(metadata).encode()) > max_bytes:
        raise ValidationError(f"metadata exceeds {max_bytes} bytes of JSON", field="metadata")
