"""Recent feedback for the dashboard, each event with the answer it is about and whether the
user disagreed with it: the label the feedback implies (as the curation reads it) is not the
label that was served, or a thumbs down / low rating says the answer was wrong. For a task
without labels (generation) the answer shown is the response, and an event disagrees when the
task's outcome rule says the answer was bad (a correction, a thumbs down, a rejected side)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from learnloop.domain import Feedback, FeedbackEvent
from learnloop.feedback.service import FeedbackService
from learnloop.tasks import OutcomeRule
from learnloop.tasks.classification import implied_label, predicted_label


@dataclass(frozen=True)
class FeedbackItem:
    id: str
    kind: str
    created_at: datetime
    given: str  # what the user said: "label 1", "thumbs down", "rating 2"
    text: str | None
    prediction_id: str | None  # the logged answer's (its explanation's page), None when not logged
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
    if fb.kind == "correction":
        return "correction"
    if fb.kind == "preference":
        return f"preferred (strength {fb.payload.get('strength')})"
    if fb.kind == "implicit":
        return f"{fb.payload.get('signal')} = {fb.payload.get('value')}"
    return f"{fb.kind.value} {fb.label}"


def _describe_unlabelled(event: FeedbackEvent, rule: OutcomeRule) -> FeedbackItem:
    """An event of a task without labels: the response served, what the feedback says instead."""
    fb, served = event.feedback, event.served
    payload = fb.payload
    implied = payload.get("correction") or payload.get("chosen")
    outcome = None if served is None else rule.outcome(event)
    if served is None:
        note = "standalone" if fb.prediction_id is None else "prediction not logged (yet): joined later"
    else:
        note = "" if event.related is None else f"over: {str(event.related.answer.get('response', ''))[:60]}"
    return FeedbackItem(
        id=fb.id,
        kind=fb.kind.value,
        created_at=fb.created_at,
        given=_given(fb),
        text=served.text if served is not None else payload.get("prompt"),
        prediction_id=None,
        served=None if served is None else str(served.answer.get("response", ""))[:120],
        version=None if served is None else served.version,
        route=None if served is None else served.route,
        implied=None if implied is None else str(implied)[:120],
        disagrees=outcome is False,
        note=note,
    )


def describe(event: FeedbackEvent, labels: Sequence[str], rule: OutcomeRule | None = None) -> FeedbackItem:
    if not labels and rule is not None:
        return _describe_unlabelled(event, rule)
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
        prediction_id=None if served is None else served.prediction_id,
        served=served_label,
        version=None if served is None else served.version,
        route=None if served is None else served.route,
        implied=implied,
        disagrees=disagrees,
        note=note,
    )


def recent_feedback(
    feedback: FeedbackService, model: str, labels: Sequence[str], limit: int = 50, rule: OutcomeRule | None = None
) -> list[FeedbackItem]:
    """The newest ``limit`` feedback events of ``model``, newest first (``rule``: the model's
    task's outcome rule, which judges the answers of a task without labels)."""
    return [describe(event, labels, rule) for event in feedback.recent(model, limit)]
