"""Was a generated answer good, by the feedback on it? Pure logic, no I/O.

One outcome per prediction, by its deciding event: an explicit text (a correction) or a
preference beats ratings and thumbs, which beat a mapped implicit signal; within one rank
the latest wins. Then:

* a rating of ``sft_min_rating`` or more (default 4): good; 1-2: bad; between: unknown;
* thumbs up: good; down: bad;
* a correction: bad (the answer should have been another text);
* a preference between two logged answers: the chosen answer good and the rejected one bad.
  ``deciding`` gives the rejected answer an event of its own: the preference seen from the
  rejected side (its ``prediction_id`` is the rejected one, ``served`` the rejected answer,
  ``related`` the chosen one), so the two answers of an A/B pair each count for their arm.
  A standalone preference (a prompt and two texts) is about no logged answer;
* an implicit signal: only where ``generation.implicit_outcomes`` maps its name (``copied=good``),
  and only when it happened (a true value, a non-zero number); unmapped signals never decide.

Another answer to the same request (a shadow's) is judged by the same event only when it is
the same response; a different response's outcome is unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from learnloop.domain import FeedbackEvent, FeedbackKind
from learnloop.policy import GenerationPolicy

# Ranks of the kinds that may decide (a mapped implicit signal ranks 0; others never decide).
RANK = {FeedbackKind.CORRECTION: 2, FeedbackKind.PREFERENCE: 2, FeedbackKind.RATING: 1, FeedbackKind.THUMBS: 1}


def rejected_side(event: FeedbackEvent) -> FeedbackEvent | None:
    """A preference seen from its rejected answer, when that answer is logged (else None)."""
    if event.kind != FeedbackKind.PREFERENCE or event.related is None:
        return None
    feedback = replace(event.feedback, prediction_id=event.related.prediction_id)
    return FeedbackEvent(feedback, served=event.related, related=event.served)


def is_rejected_side(event: FeedbackEvent) -> bool:
    rejected = event.feedback.payload.get("rejected_prediction_id")
    return event.kind == FeedbackKind.PREFERENCE and rejected is not None and event.prediction_id == rejected


class GenerationOutcomes:
    """The generation task's ``OutcomeRule`` under a model's generation policy."""

    def __init__(self, policy: GenerationPolicy) -> None:
        self.policy = policy
        self.signals = policy.signal_outcomes()

    def _rank(self, event: FeedbackEvent) -> int | None:
        if event.kind == FeedbackKind.IMPLICIT:
            return 0 if event.feedback.payload.get("signal") in self.signals else None
        return RANK.get(event.kind)

    def deciding(self, events: Iterable[FeedbackEvent]) -> list[FeedbackEvent]:
        best: dict[str, tuple[int, FeedbackEvent]] = {}
        for event in events:
            rank = self._rank(event)
            if rank is None:
                continue
            other = rejected_side(event)
            for side in (event,) if other is None else (event, other):
                if side.served is None or side.prediction_id is None:  # pending, or standalone
                    continue
                current = best.get(side.prediction_id)
                if current is None or rank >= current[0]:
                    best[side.prediction_id] = (rank, side)
        return sorted((event for _, event in best.values()), key=lambda e: (e.created_at, e.id))

    def outcome(self, event: FeedbackEvent, answer: Mapping[str, Any] | None = None) -> bool | None:
        if answer is not None and (
            event.served is None or answer.get("response") != event.served.answer.get("response")
        ):
            return None
        payload = event.feedback.payload
        kind = event.kind
        if kind == FeedbackKind.RATING:
            rating = int(payload["rating"])
            return True if rating >= self.policy.sft_min_rating else False if rating <= 2 else None
        if kind == FeedbackKind.THUMBS:
            return payload.get("thumbs") == "up"
        if kind == FeedbackKind.CORRECTION:
            return False
        if kind == FeedbackKind.PREFERENCE:
            return not is_rejected_side(event)
        if kind == FeedbackKind.IMPLICIT:
            good = self.signals.get(str(payload.get("signal")))
            return good if good is not None and bool(payload.get("value")) else None
        return None
