"""The classification task: a text in, a label with probabilities out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from learnloop.domain import FeedbackInput, FeedbackKind, Model, Prediction
from learnloop.drift import Window
from learnloop.errors import ValidationError
from learnloop.tasks.base import Candidate, OutcomeRule, Report, RetrainInputs, TextRule, TrainingFeedback
from learnloop.tasks.classification import retrain
from learnloop.tasks.classification.answers import answer_label
from learnloop.tasks.classification.outcomes import LabelOutcomes
from learnloop.tasks.signals import implicit_payload


class ClassificationTask:
    """Binary or multi-class text classification. Feedback: a label correction, thumbs, a
    rating (4-5 confirm the answer, 1-2 contradict it, 3 says nothing), a standalone
    labelled example, or an implicit signal (stored and shown; it never decides a label)."""

    key = "classification"
    feedback_kinds = frozenset(
        {FeedbackKind.LABEL, FeedbackKind.THUMBS, FeedbackKind.RATING, FeedbackKind.EXAMPLE, FeedbackKind.IMPLICIT}
    )
    policy_defaults: Mapping[str, Any] = {}

    def describe(self, model: Model) -> str:
        return "binary" if len(model.labels) == 2 else "multiclass"

    def feedback_payload(
        self, model: Model, kind: FeedbackKind, item: FeedbackInput, text_rule: TextRule
    ) -> dict[str, Any]:
        if kind not in self.feedback_kinds:
            raise ValidationError(
                f"a classification model takes {', '.join(sorted(self.feedback_kinds))} feedback, not {kind.value}",
                field=kind.value,
            )
        if kind in (FeedbackKind.LABEL, FeedbackKind.EXAMPLE):
            label = model.check_label(item.label or "")
            if kind == FeedbackKind.LABEL:
                return {"label": label}
            return {"text": text_rule(item.text or "", "text"), "label": label}
        if kind == FeedbackKind.IMPLICIT:
            return implicit_payload(model, item)
        if kind == FeedbackKind.THUMBS:
            if item.thumbs not in ("up", "down"):
                raise ValidationError("thumbs must be 'up' or 'down'", field="thumbs")
            return {"thumbs": item.thumbs}
        if item.rating is None or not 1 <= item.rating <= 5:
            raise ValidationError("rating must be an integer from 1 to 5", field="rating")
        return {"rating": item.rating}

    def outcomes(self, model: Model) -> OutcomeRule:
        return LabelOutcomes(model.labels)

    def answer_category(self, answer: Mapping[str, Any]) -> str:
        return answer_label(answer) or ""

    def answer_size(self, answer: Mapping[str, Any]) -> float | None:
        return None

    def training_feedback(self, model: Model) -> TrainingFeedback:
        """Every kind that says what the label is or whether the answer was (implicit signals
        never decide a label)."""
        return TrainingFeedback(self.feedback_kinds - {FeedbackKind.IMPLICIT})

    def drift_window(self, labels: tuple[str, ...], served: Sequence[Prediction]) -> Window:
        """The texts served and their probabilities, in the reference's label order."""
        proba = np.array(
            [[p.answer.get("probabilities", {}).get(label, 0.0) for label in labels] for p in served], dtype=float
        )
        return Window([p.text for p in served], proba.reshape(len(served), len(labels)), labels)

    def train(self, inputs: RetrainInputs, report: Report) -> Candidate:
        return retrain.train(inputs, report)
