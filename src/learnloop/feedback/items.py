"""One feedback event as it arrives on the wire (an HTTP body, an item of a batch, later a
stream message): its schema, and the parse every intake path shares."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from learnloop.domain import FeedbackInput
from learnloop.errors import ValidationError


def label_str(value: Any) -> Any:
    """Labels are strings; a JSON number (or bool) that names one is accepted too."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else str(value)
    return value


class FeedbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prediction_id: str | None = None
    label: str | None = Field(default=None, min_length=1, max_length=128)
    thumbs: Literal["up", "down"] | None = None
    rating: int | None = Field(default=None, ge=1, le=5)
    text: str | None = Field(default=None, min_length=1)
    subject: str | None = Field(default=None, max_length=256)
    metadata: dict[str, Any] | None = None
    feedback_id: str | None = Field(default=None, min_length=1, max_length=128, description="Client idempotency key.")
    correction: str | None = Field(
        default=None, min_length=1, description="Generation: what the answer should have been."
    )
    chosen_prediction_id: str | None = Field(default=None, description="Preference: the answer preferred ...")
    rejected_prediction_id: str | None = Field(default=None, description="... over this answer to the same prompt.")
    prompt: str | None = Field(default=None, min_length=1, description="A standalone preference: the prompt ...")
    chosen: str | None = Field(default=None, min_length=1, description="... the answer preferred ...")
    rejected: str | None = Field(default=None, min_length=1, description="... over this one.")
    strength: float | None = Field(
        default=None, ge=0, le=1, allow_inf_nan=False, description="How strongly chosen is preferred, 0-1 (default 1)."
    )
    signal: str | None = Field(default=None, min_length=1, max_length=64, description="Implicit: the signal's name ...")
    value: bool | float | None = Field(default=None, description="... and its value (a finite number or a boolean).")

    _label = field_validator("label", mode="before")(label_str)

    @field_validator("strength", mode="before")
    @classmethod
    def _strict_number(cls, value: Any) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError("strength must be a number from 0 to 1")
        return value

    @field_validator("value", mode="before")
    @classmethod
    def _number_or_bool(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        try:
            number = float(value) if isinstance(value, int | float) else math.nan
        except OverflowError:  # an integer past float range
            number = math.nan
        if not math.isfinite(number):
            raise ValueError("value must be a finite number or a boolean")
        return number

    @field_validator("rating", mode="before")
    @classmethod
    def _strict_int(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("rating must be an integer from 1 to 5")
        return value

    def to_input(self, feedback_id: str | None = None) -> FeedbackInput:
        """The domain input; ``feedback_id``, if given, in place of the body's (a stream message's id).

        The fields as validated, set directly: the frozen dataclass's ``__init__`` sets each of
        its 17 fields with ``object.__setattr__``, 2 us an event on the stream's hot path. The
        two classes have the same fields (a test checks) and ``FeedbackInput`` no ``__post_init__``."""
        item = object.__new__(FeedbackInput)
        fields = item.__dict__
        fields.update(self.__dict__)
        if feedback_id is not None:
            fields["feedback_id"] = feedback_id
        return item


def parse_item(raw: Mapping[str, Any]) -> FeedbackInput:
    """One raw item, or a ``ValidationError`` naming the offending field."""
    try:
        return FeedbackCreate.model_validate(raw).to_input()
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "item"
        raise ValidationError(f"{field}: {first['msg']}", field=field) from None
