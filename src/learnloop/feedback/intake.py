"""Feedback intake rules: which shape of event is which kind, and what is valid.

Shapes accepted (``subject``, ``metadata`` and a client ``feedback_id`` are optional on all):

* ``{"prediction_id", "label"}``: a label correction;
* ``{"prediction_id", "thumbs": "up"|"down"}``;
* ``{"prediction_id", "rating": 1..5}``;
* ``{"prediction_id", "correction"}``: the text a generated answer should have been;
* ``{"prediction_id", "signal", "value"}``: an implicit signal (``copied``, ``dwell_ms``, ...; a
  built-in name or one the model's policy declares) with a finite number or a boolean;
* ``{"chosen_prediction_id", "rejected_prediction_id", "strength"?}``: a preference between two
  logged answers to one prompt, stored on the chosen one (``prediction_id``) with payload
  ``{"rejected_prediction_id", "strength"}``;
* ``{"prompt", "chosen", "rejected", "strength"?}``: a standalone preference (``strength`` 0-1,
  default 1);
* ``{"text", "label"}``: a standalone labelled example.

Which kinds a model takes, and what a valid event of each says, is its task's business
(``learnloop.tasks``): a classification model refuses corrections and preferences, a
generative one labels and examples. Every free text goes through the same rule (length,
storable, personal data scrubbed).

A prediction id that is not (yet) in the log is accepted: the event is kept and joined when
the prediction arrives. A preference whose two answers are both logged already must name two
different answers of this model to the same prompt (``FeedbackService`` checks it); with one
not logged yet it is kept, and curation drops a pair that turns out mismatched.

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
import re
import reprlib
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from learnloop.config import Limits
from learnloop.curation.pii import scrub_text
from learnloop.domain import Feedback, FeedbackInput, FeedbackKind, Model, Prediction
from learnloop.errors import DuplicateInBatchError, LearnloopError, ValidationError
from learnloop.ids import new_id
from learnloop.nesting import value_too_deep
from learnloop.tasks import get_task


def hash_subject(subject: str | None) -> str | None:
    """Subjects are stored hashed: the same user maps to the same key, the id is not kept."""
    if subject is None:
        return None
    return hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# What an event on one logged answer carries: exactly one of these (``signal`` with its ``value``).
_ON_PREDICTION = ("label", "thumbs", "rating", "correction", "signal")
_PAIR = ("chosen_prediction_id", "rejected_prediction_id")
_STANDALONE_PAIR = ("prompt", "chosen", "rejected")
_SHAPE_FIELDS = ("prediction_id", *_ON_PREDICTION, "text", *_PAIR, *_STANDALONE_PAIR, "strength", "value")
_SHAPES = (
    "a prediction_id with one of label, thumbs, rating, correction or signal (with a value); "
    "chosen_prediction_id with rejected_prediction_id; prompt, chosen and rejected; or a text with a label"
)


_PAIR_SET = frozenset(_PAIR)
_STANDALONE_PAIR_SET = frozenset(_STANDALONE_PAIR)
_ON_PREDICTION_SET = frozenset(_ON_PREDICTION)
_KINDS = {kind.value: kind for kind in FeedbackKind}


def _given(item: FeedbackInput) -> list[str]:
    """The shape's fields given, in ``_SHAPE_FIELDS`` order."""
    fields = vars(item)
    return [name for name in _SHAPE_FIELDS if fields[name] is not None]


def _only(given: list[str], allowed: tuple[str, ...], needed: tuple[str, ...], shape: str) -> None:
    """Refuse a field the shape does not take, then a field it needs that is missing."""
    for name in given:
        if name not in allowed:
            raise ValidationError(f"{shape} does not take {name}", field=name)
    for name in needed:
        if name not in given:
            raise ValidationError(f"{shape} needs {', '.join(needed)}; {name} is missing", field=name)


def feedback_kind(item: FeedbackInput) -> FeedbackKind:
    """The kind of event the fields given make (the shapes in the module docstring)."""
    given = _given(item)
    if not _PAIR_SET.isdisjoint(given):
        _only(given, (*_PAIR, "strength"), _PAIR, "a preference between two logged answers")
        return FeedbackKind.PREFERENCE
    if not _STANDALONE_PAIR_SET.isdisjoint(given):
        _only(given, (*_STANDALONE_PAIR, "strength"), _STANDALONE_PAIR, "a standalone preference")
        return FeedbackKind.PREFERENCE
    if "strength" in given:
        raise ValidationError("strength belongs to a preference", field="strength")
    signals = [name for name in given if name in _ON_PREDICTION_SET]  # in _ON_PREDICTION's order
    if item.prediction_id is None:
        if item.text is not None and signals == ["label"]:
            return FeedbackKind.EXAMPLE
        raise ValidationError(f"feedback needs {_SHAPES}", field="prediction_id")
    if item.text is not None:
        raise ValidationError("give either a prediction_id or a text, not both", field="text")
    if len(signals) != 1:
        raise ValidationError(
            "feedback on a prediction carries exactly one of label, thumbs, rating, correction or signal; "
            f"got {signals or 'none'}",
            field=signals[1] if len(signals) > 1 else "label",
        )
    if signals == ["signal"]:
        if item.value is None:
            raise ValidationError("an implicit signal needs a value (a number or a boolean)", field="value")
        return FeedbackKind.IMPLICIT
    if item.value is not None:
        raise ValidationError("value belongs to an implicit signal", field="value")
    return _KINDS[signals[0]]


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
    item = canonical_ids(item)
    prediction_id = item.chosen_prediction_id if item.chosen_prediction_id is not None else item.prediction_id

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


def is_pair(row: Mapping[str, Any]) -> bool:
    """Whether a row made by ``to_row`` is a preference between two logged answers."""
    return row["kind"] == FeedbackKind.PREFERENCE and "rejected_prediction_id" in row["payload"]


def pair_error(model: str, chosen: Prediction | None, rejected: Prediction | None) -> ValidationError | None:
    """Why a preference between these two logged answers (None: not logged yet) is refused:
    an answer of another model, or (both logged) answers to two different prompts."""
    for side, answer in (("chosen", chosen), ("rejected", rejected)):
        if answer is not None and answer.model != model:
            return ValidationError(
                f"{side}_prediction_id {answer.id} is an answer of model {answer.model!r}, not {model!r}: "
                "a preference compares two answers of one model",
                field=f"{side}_prediction_id",
            )
    if chosen is not None and rejected is not None and chosen.text != rejected.text:
        return ValidationError(
            f"predictions {chosen.id} and {rejected.id} answer different prompts: "
            "a preference compares two answers to the same prompt",
            field="rejected_prediction_id",
        )
    return None


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


def canonical_prediction_id(value: str, field: str = "prediction_id") -> str:
    """Prediction ids are stored in one spelling (lower-case, dashed), so any spelling a
    client sends joins its prediction."""
    if _CANONICAL_UUID.fullmatch(value):
        return value  # already so (what ``str(uuid.UUID(value))`` would give)
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValidationError(f"{field} {value!r} is not a UUID", field=field) from None


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def canonical_ids(item: FeedbackInput) -> FeedbackInput:
    """``item`` with every prediction id it names in the stored spelling."""

    def canonical(value: str | None, field: str) -> str | None:
        return None if value is None else canonical_prediction_id(value, field)

    prediction_id = canonical(item.prediction_id, "prediction_id")
    chosen = canonical(item.chosen_prediction_id, "chosen_prediction_id")
    rejected = canonical(item.rejected_prediction_id, "rejected_prediction_id")
    if (prediction_id, chosen, rejected) == (
        item.prediction_id,
        item.chosen_prediction_id,
        item.rejected_prediction_id,
    ):
        return item  # the usual case: no copy made
    return replace(item, prediction_id=prediction_id, chosen_prediction_id=chosen, rejected_prediction_id=rejected)


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


def check_prediction_metadata(metadata: dict[str, Any], limits: Limits, field: str = "metadata") -> None:
    """A prediction's metadata (group attributes for fairness, never a feature) is flat: at most
    ``max_metadata_keys`` keys of 1 to ``max_metadata_key_chars`` characters, each value a string,
    number, boolean or null, then bounded and checked as a feedback event's metadata."""
    if len(metadata) > limits.max_metadata_keys:
        raise ValidationError(
            f"metadata has {len(metadata)} keys; the limit is {limits.max_metadata_keys}", field=field
        )
    for key, value in metadata.items():
        if not 1 <= len(key) <= limits.max_metadata_key_chars:
            raise ValidationError(
                f"metadata keys must have 1 to {limits.max_metadata_key_chars} characters; got {reprlib.repr(key)}",
                field=field,
            )
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ValidationError(
                f"metadata[{key!r}] must be a string, number, boolean or null (a prediction's metadata is flat)",
                field=field,
            )
    try:
        check_metadata(metadata, limits.max_metadata_bytes, 1)
    except ValidationError as exc:
        raise ValidationError(exc.message, field=field) from None
