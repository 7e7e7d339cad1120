"""Recent feedback for the dashboard, each event with the answer it is about and whether the
user disagreed with it: the label the feedback implies (as the curation reads it) is not the
label that was served, or a thumbs down / low rating says the answer was wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from learnloop.domain import Feedback, FeedbackEvent
from learnloop.feedback.service import FeedbackService
from learnloop.tasks.classification import implied_label, predicted_label


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


def _given(fb: Feedback) -> str:
    if fb.kind == "thumbs":
        return f"thumbs {fb.thumbs}"
    if fb.kind == "rating":
        return f"rating {fb.rating}"
    return f"{fb.kind.value} {fb.label}"


def describe(event: FeedbackEvent, labels: Sequence[str]) -> FeedbackItem:
    fb, served = event.feedback, event.served
    served_label = predicted_label(event)
    if fb.kind == "example":
        implied, disagrees, note = fb.label, False, "standalone example"
    elif served is None:
        implied, disagrees, note = fb.label, False, "prediction not logged (yet): joined later"
    else:
        implied, outcome = implied_label(event, labels)
        disagrees = (implied is not None and implied != served_label) or outcome == "negative"
        note = "" if outcome == "labelled" else outcome.replace("_", " ")
    return FeedbackItem(
        id=fb.id,
        kind=fb.kind.value,
        created_at=fb.created_at,
        given=_given(fb),
        text=served.text if served is not None else fb.text,
        served=served_label,
        version=None if served is None else served.version,
        route=None if served is None else served.route,
        implied=implied,
        disagrees=disagrees,
        note=note,
    )


def recent_feedback(
    feedback: FeedbackService, model: str, labels: Sequence[str], limit: int = 50
) -> list[FeedbackItem]:
    """The newest ``limit`` feedback events of ``model``, newest first."""
    return [describe(event, labels) for event in feedback.recent(model, limit)]
