"""Was a classifier's answer right, by the feedback on it? Pure logic, no I/O.

One outcome per prediction: its feedback is resolved as the curation does it (an explicit
label beats thumbs and ratings; within a kind the latest wins), then:

* a label (or a confirming thumbs up / rating 4-5) says which label was right, so the answer
  was right if it is that label;
* thumbs down or a rating of 1-2 says the answer was wrong (on a multi-class task it does not
  say which label was right);
* a rating of 3 says nothing.

Another answer to the same request (a shadow's) is right if it is the implied label. A
multi-class thumbs down tells only that it was wrong too when it gave the same answer; when it
gave another answer the outcome is unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from learnloop.domain import FeedbackEvent
from learnloop.tasks.classification.answers import answer_label, predicted_label
from learnloop.tasks.classification.labels import implied_label, winning_events


def latest_per_prediction(events: Iterable[FeedbackEvent]) -> list[FeedbackEvent]:
    """The deciding event of each prediction (events oldest first), as curation decides it."""
    return winning_events(events, lambda event: event.prediction_id)[0]


def answer_correct(event: FeedbackEvent, labels: Sequence[str], answer: Mapping[str, Any] | None = None) -> bool | None:
    """Was ``answer`` (default: the served answer) right, by this feedback event? None: unknown."""
    predicted = predicted_label(event)
    given = predicted if answer is None else answer_label(answer)
    truth, outcome = implied_label(event, labels)
    if truth is not None:
        return given == truth
    if outcome == "negative":  # "not the served answer"
        return False if given == predicted else None
    return None


class LabelOutcomes:
    """The classification task's ``OutcomeRule`` for a model with these labels."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = tuple(labels)

    def deciding(self, events: Iterable[FeedbackEvent]) -> list[FeedbackEvent]:
        return latest_per_prediction(events)

    def outcome(self, event: FeedbackEvent, answer: Mapping[str, Any] | None = None) -> bool | None:
        return answer_correct(event, self.labels, answer)
