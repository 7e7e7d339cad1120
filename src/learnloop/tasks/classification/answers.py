"""A classifier's answer as it is stored: ``{"label": ..., "probabilities": {label: p}}``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from learnloop.domain import FeedbackEvent


@dataclass(frozen=True)
class ClassAnswer:
    label: str
    probabilities: dict[str, float]

    @classmethod
    def of(cls, answer: Mapping[str, Any]) -> ClassAnswer:
        return cls(str(answer["label"]), {str(k): float(v) for k, v in answer.get("probabilities", {}).items()})

    def to_answer(self) -> dict[str, Any]:
        return {"label": self.label, "probabilities": self.probabilities}


def answer_label(answer: Mapping[str, Any] | None) -> str | None:
    """The label of a stored answer (None for none)."""
    return None if answer is None else str(answer["label"])


def predicted_label(event: FeedbackEvent) -> str | None:
    """The label that was served for the prediction an event is about (None: not logged)."""
    return None if event.served is None else answer_label(event.served.answer)
