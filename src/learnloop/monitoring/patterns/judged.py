"""Judged answers as the error analysis reads them: the text, whether users said it was wrong,
what was answered and what they said it should have been. Pure logic, no I/O.

One row per prediction, decided by the model's task (its ``OutcomeRule``: the event that
decides each prediction and whether the answer was good), so the analysis counts exactly what
online accuracy and rollouts count. A *disagreement* is a judged answer that was wrong: a label
correction that names another label, a thumbs down, a rating of 1-2; for a generated answer a
low rating, a thumbs down, a correction or the rejected side of a preference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from learnloop.domain import FeedbackEvent, FeedbackKind
from learnloop.tasks import OutcomeRule
from learnloop.tasks.classification import implied_label, predicted_label
from learnloop.tasks.classification.labels import event_metadata


@dataclass(frozen=True)
class Judged:
    """One judged answer: ``wrong`` by its deciding feedback; ``predicted -> corrected`` names
    the disagreement (``positive -> negative``; ``not positive`` when a multi-class thumbs down
    does not say which label; for a generated answer ``answer -> correction`` and the like)."""

    prediction_id: str
    text: str
    wrong: bool
    predicted: str
    corrected: str
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def pair(self) -> str:
        return f"{self.predicted} -> {self.corrected}"


def _pair(event: FeedbackEvent, labels: tuple[str, ...], wrong: bool) -> tuple[str, str]:
    """What was answered and what the feedback says it should have been."""
    served = event.served
    if served is not None and "label" in served.answer:  # a classifier's answer
        predicted = predicted_label(event) or "?"
        truth, _ = implied_label(event, labels)
        return predicted, truth if truth is not None else (f"not {predicted}" if wrong else predicted)
    fb = event.feedback
    said = {
        FeedbackKind.RATING: f"rating {fb.rating}",
        FeedbackKind.THUMBS: f"thumbs {fb.thumbs}",
        FeedbackKind.CORRECTION: "correction",
        FeedbackKind.PREFERENCE: "rejected" if wrong else "chosen",
    }.get(fb.kind, fb.kind.value)
    return "answer", said


def judged_answers(events: Iterable[FeedbackEvent], rule: OutcomeRule, labels: tuple[str, ...]) -> list[Judged]:
    """The judged answers among ``events`` (oldest first), one per prediction; answers whose
    feedback says nothing about being right (a rating of 3) are left out."""
    out = []
    for event in rule.deciding(events):
        good = rule.outcome(event)
        if good is None or event.served is None or event.prediction_id is None:
            continue
        predicted, corrected = _pair(event, labels, not good)
        metadata = event_metadata(event) or {}  # the prediction's, with the feedback's over it
        out.append(
            Judged(
                prediction_id=event.prediction_id,
                text=event.served.text,
                wrong=not good,
                predicted=predicted,
                corrected=corrected,
                version=event.served.version,
                metadata=_scalars(metadata),
            )
        )
    return out


def _scalars(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata fields a slice can group by: short scalar values only."""
    return {
        str(k): v
        for k, v in metadata.items()
        if isinstance(v, str | int | bool) and not (isinstance(v, str) and len(v) > 64)
    }
