"""Recent feedback for the dashboard, each event with the answer it is about and whether the
user disagreed with it: the label the feedback implies (as the curation reads it) is not the
label that was served, or a thumbs down / low rating says the answer was wrong."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from learnloop.curation.labels import implied_label
from learnloop.store.db import Database
from learnloop.store.repositories import feedback as feedback_repo


@dataclass(frozen=True)
class FeedbackItem:
    id: str
    kind: str
    created_at: datetime
    given: str  # what the user said: "label 1", "thumbs down", "rating 2"
    text: str | None
    served: str | None  # the answer, None for a standalone example or an unlogged prediction
    version: int | None
    route: str | None
    implied: str | None  # the label the feedback implies, when it names one
    disagrees: bool
    note: str


def _given(row: Mapping[str, Any]) -> str:
    kind = row["kind"]
    if kind == "thumbs":
        return f"thumbs {row['thumbs']}"
    if kind == "rating":
        return f"rating {row['rating']}"
    return f"{kind} {row['label']}"


def describe(row: Mapping[str, Any], labels: Sequence[str]) -> FeedbackItem:
    served = row.get("predicted_label")
    if row["kind"] == "example":
        implied, disagrees, note = row["label"], False, "standalone example"
    elif served is None:
        implied, disagrees, note = row["label"], False, "prediction not logged (yet): joined later"
    else:
        implied, outcome = implied_label(row, labels)
        disagrees = (implied is not None and implied != served) or outcome == "negative"
        note = "" if outcome == "labelled" else outcome.replace("_", " ")
    return FeedbackItem(
        id=row["id"],
        kind=row["kind"],
        created_at=row["created_at"],
        given=_given(row),
        text=row.get("prediction_text") or row.get("text"),
        served=served,
        version=row.get("prediction_version"),
        route=row.get("prediction_route"),
        implied=implied,
        disagrees=disagrees,
        note=note,
    )


def recent_feedback(db: Database, model: str, labels: Sequence[str], limit: int = 50) -> list[FeedbackItem]:
    """The newest ``limit`` feedback events of ``model``, newest first."""
    with db.read() as conn:
        rows = feedback_repo.recent_feedback(conn, model, limit)
    return [describe(row, labels) for row in rows]
