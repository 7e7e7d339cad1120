"""One message on a stream: an envelope around the body the HTTP API takes.

``{"id": ..., "type": "feedback" | "prediction" | "generation", "model": ..., "event": {...}}``

* ``feedback``: ``event`` is ``POST /v1/models/{model}/feedback``'s body (``FeedbackCreate``:
  labels, thumbs, ratings, corrections, preferences, implicit signals, labelled examples).
  ``id`` is its idempotency key (the ``feedback_id``; an ``event.feedback_id`` must be the same).
* ``prediction``: ``event`` is ``POST /v1/models/{model}/predict``'s body (``PredictRequest``);
  a classifier answers it and the answer is logged under ``id``, a UUID the producer chose, so
  that feedback later on the stream can name it.
* ``generation``: ``event`` is ``POST /v1/models/{model}/generations``'s body
  (``GenerationCreate``: an answer made elsewhere), logged under ``id`` (a UUID) likewise.

A redelivered message (the same ``id``) changes nothing. The envelope is checked here; the
body is checked by the same intake services (and the same pydantic models) the HTTP API
calls (a feedback body's ``FeedbackCreate`` here, with its envelope, when both pass).
``stream_event_schema()`` is the JSON Schema of all of it, kept in
``docs/schemas/stream-event.json``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from learnloop.api.schemas import PredictRequest
from learnloop.domain import FeedbackInput
from learnloop.errors import ValidationError
from learnloop.feedback.generations import GenerationCreate
from learnloop.feedback.items import FeedbackCreate

EventType = Literal["feedback", "prediction", "generation"]


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128, description="The event's id: a redelivery carries the same.")
    model: str = Field(min_length=1, max_length=128, description="The learnloop model the event is for.")


class FeedbackMessage(_Envelope):
    type: Literal["feedback"]
    event: FeedbackCreate = Field(description="As in POST /v1/models/{model}/feedback; id is its feedback_id.")


class PredictionMessage(_Envelope):
    type: Literal["prediction"]
    event: PredictRequest = Field(description="As in POST /v1/models/{model}/predict; logged under id (a UUID).")


class GenerationMessage(_Envelope):
    type: Literal["generation"]
    event: GenerationCreate = Field(description="As in POST /v1/models/{model}/generations; logged under id (a UUID).")


StreamEvent = Annotated[FeedbackMessage | PredictionMessage | GenerationMessage, Field(discriminator="type")]


class Envelope(_Envelope):
    """What the consumer checks itself: the body stays raw for the intake services to parse."""

    type: EventType
    event: dict[str, Any]


def stream_event_schema() -> dict[str, Any]:
    schema: dict[str, Any] = TypeAdapter(StreamEvent).json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "learnloop stream event",
        "description": (__doc__ or "").strip().splitlines()[0],
        **schema,
    }


@dataclass(frozen=True, slots=True)
class Message:
    """A message whose envelope passed: its body raw, or (most feedback) parsed already."""

    id: str
    type: EventType
    model: str
    event: dict[str, Any]
    feedback: FeedbackInput | None = None  # the body as ``FeedbackCreate`` took it, ``feedback_id`` the id

    @property
    def feedback_item(self) -> FeedbackInput | dict[str, Any]:
        """What ``FeedbackService.record_many`` takes for this feedback event: the parsed body,
        or the raw one (with the id as its ``feedback_id``) for the service to parse and refuse."""
        return self.feedback if self.feedback is not None else {**self.event, "feedback_id": self.id}


def parse_envelope(data: bytes) -> Message:
    """The envelope of one message, or a ``ValidationError`` saying what is wrong with it.

    A feedback event is checked, envelope and body, by one ``FeedbackMessage`` validation (the
    hot path); any error there and the message takes the general path (the envelope alone,
    then the body in ``record_many``), so what is refused, and why, is the same either way."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"the message is not JSON: {exc}", field="message") from None
    if type(raw) is dict and raw.get("type") == "feedback":
        try:
            message = FeedbackMessage.model_validate(raw)
        except PydanticValidationError:
            pass
        else:
            if message.event.feedback_id in (None, message.id):
                return Message(message.id, "feedback", message.model, raw["event"], message.event.to_input(message.id))
    try:
        envelope = Envelope.model_validate(raw)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "message"
        raise ValidationError(f"{field}: {first['msg']}", field=field) from None
    if envelope.type == "feedback":
        given = envelope.event.get("feedback_id")
        if given is not None and given != envelope.id:
            raise ValidationError("event.feedback_id differs from the message's id", field="event.feedback_id")
        return Message(envelope.id, envelope.type, envelope.model, envelope.event)
    try:
        id_ = str(uuid.UUID(envelope.id))
    except ValueError:
        raise ValidationError(
            f"a {envelope.type} event's id is its prediction id: a UUID, not {envelope.id!r}", field="id"
        ) from None
    return Message(id_, envelope.type, envelope.model, envelope.event)
