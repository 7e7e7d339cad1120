"""Implicit feedback, for every task: a named signal with a value (``copied``, ``regenerated``,
``dwell_ms``, ``completed``, ``abandoned``, or any name the model's policy declares in
``generation.implicit_signals``). Stored and shown; only the generation task's outcome rule
reads one, and only where ``generation.implicit_outcomes`` maps it."""

from __future__ import annotations

import math
from typing import Any

from learnloop.domain import FeedbackInput, Model
from learnloop.errors import ValidationError


def implicit_payload(model: Model, item: FeedbackInput) -> dict[str, Any]:
    """``{"signal", "value"}`` of a valid implicit event: a signal the model knows and a finite
    number or a boolean."""
    known = model.policy.generation.signals()
    if item.signal not in known:
        raise ValidationError(
            f"unknown signal {item.signal!r}; model {model.name!r} takes {', '.join(known)} "
            "(declare more in its policy's implicit_signals)",
            field="signal",
        )
    value = item.value
    if isinstance(value, bool):
        return {"signal": item.signal, "value": value}
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError("value must be a finite number or a boolean", field="value")
    return {"signal": item.signal, "value": float(value)}
