"""Turn raw feedback events into labelled examples. Pure logic, no I/O.

Rules (stated, so a snapshot can be explained):

* ``example`` (standalone text + label) and ``label`` (a correction of a prediction) give
  their label directly;
* ``thumbs`` up, or a ``rating`` of 4-5, confirms the predicted label; thumbs down, or a
  rating of 1-2, means "not the predicted label": on a binary task that is the other label,
  on a multi-class task it is kept as a *negative* and not trained on; a rating of 3 is
  neutral;
* feedback whose prediction is not (yet) in the log is *pending*: kept, and joined by a
  later snapshot once the prediction arrives;
* several events on one prediction: an explicit label beats thumbs or ratings, and within
  the same kind the latest wins;
* the same text labelled differently: the latest label wins;
* an ``implicit`` signal (copied, dwell time, ...) says nothing about the label: it is
  counted (``ignored_kind``) and never decides, nor supersedes an event that does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from learnloop.curation.dedup import normalize_text
from learnloop.domain import FeedbackEvent
from learnloop.tasks.classification.answers import predicted_label


@dataclass(frozen=True)
class LabelledExample:
    text: str
    label: str
    source: str  # "bootstrap" or "feedback:<kind>"
    created_at: datetime | None = None
    feedback_id: str | None = None
    metadata: Mapping[str, Any] | None = None  # the prediction's and feedback's metadata (slices, fairness groups)
    subject: str | None = None  # who gave it (hashed), for per-subject caps
    weight: float = 1.0  # training weight (trust of the resolution, noise filter); 1: as today


# Several events on one prediction: an explicit label beats thumbs or ratings.
EVENT_PRIORITY = {"label": 2, "example": 2, "thumbs": 1, "rating": 1}


def implied_label(event: FeedbackEvent, labels: Sequence[str]) -> tuple[str | None, str]:
    """(label, outcome) for one event whose prediction is known: ``labelled``, ``neutral``
    (a rating of 3), ``negative`` (multi-class thumbs down: not the predicted label) or why not."""
    fb = event.feedback
    kind = fb.kind
    if kind in ("label", "example"):
        return fb.label, "labelled"
    if kind == "thumbs":
        positive = fb.thumbs == "up"
    elif kind == "rating":
        if fb.rating == 3:
            return None, "neutral"
        positive = (fb.rating or 0) >= 4
    else:
        return None, "unknown_kind"
    predicted = predicted_label(event)
    if predicted not in labels:  # a prediction of a model whose labels were different
        return None, "unknown_predicted_label"
    if positive:
        return predicted, "labelled"
    if len(labels) == 2:
        return next(lab for lab in labels if lab != predicted), "labelled"
    return None, "negative"


def event_key(event: FeedbackEvent) -> str | None:
    """What one event is about: a standalone text, or a logged prediction (None while the
    prediction is not in the log yet: pending)."""
    if event.kind == "example":
        return f"text:{normalize_text(event.feedback.text or '')}"
    if event.served is None:
        return None
    return f"prediction:{event.prediction_id}"


def winning_events(
    events: Iterable[FeedbackEvent], key: Callable[[FeedbackEvent], Hashable | None] = event_key
) -> tuple[list[FeedbackEvent], Counter[str]]:
    """The deciding event per ``key`` (events oldest first): an explicit label beats thumbs or
    ratings, and within the same priority the latest wins; a kind that says nothing of the
    label (``implicit``) never decides. Winners in time order; counts of events by kind,
    ``ignored_kind``, ``pending_prediction`` (key None) and ``superseded``."""
    counts: Counter[str] = Counter()
    best: dict[Hashable, tuple[int, FeedbackEvent]] = {}
    for event in events:
        counts[f"events.{event.kind}"] += 1
        if event.kind not in EVENT_PRIORITY:
            counts["ignored_kind"] += 1
            continue
        k = key(event)
        if k is None:
            counts["pending_prediction"] += 1
            continue
        priority = EVENT_PRIORITY.get(event.kind, 0)
        current = best.get(k)
        if current is not None:
            counts["superseded"] += 1
        if current is None or priority >= current[0]:
            best[k] = (priority, event)
    winners = sorted((event for _, event in best.values()), key=lambda e: (e.created_at, e.id))
    return winners, counts


def event_text(event: FeedbackEvent) -> str:
    """The text an event labels: the standalone example's, or the prediction's."""
    if event.kind == "example" or event.served is None:
        return event.feedback.text or ""
    return event.served.text


def event_metadata(event: FeedbackEvent) -> Mapping[str, Any] | None:
    """The metadata an event's example carries: the prediction's (sent with ``predict``) with
    the feedback's over it, key by key (the feedback is the later word on the same answer)."""
    served = event.served.answer.get("metadata") if event.served is not None else None
    given = event.feedback.metadata
    if not isinstance(served, Mapping):
        return given
    return {**served, **given} if isinstance(given, Mapping) else dict(served)


def feedback_example(event: FeedbackEvent, label: str, weight: float = 1.0) -> LabelledExample:
    """The training example an event gives."""
    fb = event.feedback
    return LabelledExample(
        event_text(event),
        label,
        f"feedback:{fb.kind}",
        fb.created_at,
        fb.id,
        event_metadata(event),
        fb.subject,
        weight,
    )


def derive_examples(
    events: Iterable[FeedbackEvent], labels: Sequence[str]
) -> tuple[list[LabelledExample], Counter[str]]:
    """Feedback events (oldest first, with their answers) -> labelled examples."""
    winners, counts = winning_events(events)
    by_text: dict[str, LabelledExample] = {}
    for event in winners:
        label, outcome = implied_label(event, labels)
        if label is None:
            counts[outcome] += 1
            continue
        example = feedback_example(event, label)
        norm = normalize_text(example.text)
        if norm in by_text:
            counts["same_text_relabelled" if by_text[norm].label != label else "duplicate_text"] += 1
            del by_text[norm]  # re-insert so the dict stays in time order
        by_text[norm] = example
    examples = list(by_text.values())
    counts["examples"] = len(examples)
    return examples, counts
