"""Feedback events for pure-logic tests, built from the flat fields a test names."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from learnloop.domain import Feedback, FeedbackEvent, FeedbackKind, Served

_PAYLOAD_KEYS = ("label", "thumbs", "rating", "text")


def feedback_event(row: Mapping[str, Any]) -> FeedbackEvent:
    """A ``FeedbackEvent`` from flat fields: the event's (``id``, ``kind``, ``label``, ``thumbs``,
    ``rating``, ``text``, ``subject``, ``metadata``, ``created_at``, ``prediction_id``) and its
    answer's (``prediction_text``, ``predicted_label``, ``version``/``prediction_version``,
    ``route``, ``served_at``; no answer when ``predicted_label`` is None), and ``shadow_label``."""
    created = row.get("created_at") or datetime(2026, 1, 1, tzinfo=UTC)
    payload = {k: row[k] for k in _PAYLOAD_KEYS if row.get(k) is not None}
    fb = Feedback(
        id=row["id"],
        model=row.get("model", "m"),
        kind=FeedbackKind(row["kind"]),
        prediction_id=row.get("prediction_id"),
        client_id=None,
        payload=payload,
        subject=row.get("subject"),
        metadata=row.get("metadata"),
        created_at=created,
    )
    served = None
    if row.get("predicted_label") is not None and row.get("prediction_id") is not None:
        served = Served(
            prediction_id=row["prediction_id"],
            version=row.get("version", row.get("prediction_version", 1)),
            route=row.get("route", "champion"),
            text=row.get("prediction_text") or "a text",
            answer={"label": row["predicted_label"], "probabilities": {}},
            created_at=row.get("served_at") or created,
        )
    shadow = row.get("shadow_label")
    return FeedbackEvent(fb, served, None if shadow is None else {"label": shadow, "probabilities": {}})
