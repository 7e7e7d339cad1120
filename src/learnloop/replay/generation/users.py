"""Simulated users of a generation replay: for each pair of the stream, the application showed
two answers to the prompt (the pair's chosen and rejected answers, logged as the model's
answers made elsewhere), and a user reacts per the data.

The rule (``FeedbackRule``):

* ``preference``: the user says which answer they prefer: the chosen one, over the rejected one
  (a ``preference`` event between the two logged answers);
* ``ratings``: the user rates the chosen answer ``CHOSEN_RATING`` (5) and the rejected one
  ``REJECTED_RATING`` (2): the chosen becomes an SFT row and a desirable KTO row, the rejected
  an undesirable one, and the rating gap (3) makes the pair a preference by itself;
* ``both`` (default): the two ratings and the preference (the loop's curation counts the pair
  once: an explicit preference and the same comparison from ratings are one row).

A ``noise`` share of users (drawn per pair by the seed) answers the other way round: the
rejected answer preferred and rated high. Every pair comes from its own user (``subject``).
Pure logic: what to log and what to send, no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from learnloop.datasets.preference import PreferencePair
from learnloop.domain import FeedbackInput
from learnloop.errors import ValidationError
from learnloop.tasks.generation.answers import Message
from learnloop.tasks.generation.sets import GenerationSets, KtoRow, Provenance, SftRow, Split
from learnloop.tasks.generation.sets import PreferencePair as TrainingPair

CHOSEN_RATING = 5
REJECTED_RATING = 2
SOURCE_MODEL = "preference-data"  # who "answered": the data set's answers are logged as made elsewhere


class FeedbackRule(StrEnum):
    PREFERENCE = "preference"
    RATINGS = "ratings"
    BOTH = "both"

    @property
    def rates(self) -> bool:
        return self is not FeedbackRule.PREFERENCE

    @property
    def prefers(self) -> bool:
        return self is not FeedbackRule.RATINGS

    @property
    def events_per_pair(self) -> int:
        """Feedback events a pair sends: what the volume trigger (``retrain_every``) counts."""
        return 2 * self.rates + self.prefers


@dataclass(frozen=True)
class PairReaction:
    """How the user of pair ``index`` reacts: ``truthful`` (per the data) or the other way round."""

    index: int
    subject: str
    truthful: bool

    def logged(self, pair: PreferencePair) -> list[dict[str, object]]:
        """The two answers to log (chosen first), as ``POST /generations`` items."""
        messages = [dict(m) for m in pair.messages]
        return [
            {"messages": messages, "response": answer, "source_model": SOURCE_MODEL, "subject": self.subject}
            for answer in (pair.chosen, pair.rejected)
        ]

    def feedback(self, rule: FeedbackRule, chosen_id: str, rejected_id: str) -> list[FeedbackInput]:
        """The events to send on the logged chosen and rejected answers."""
        liked, disliked = (chosen_id, rejected_id) if self.truthful else (rejected_id, chosen_id)
        items: list[FeedbackInput] = []
        if rule.rates:
            items += [
                FeedbackInput(prediction_id=liked, rating=CHOSEN_RATING, subject=self.subject),
                FeedbackInput(prediction_id=disliked, rating=REJECTED_RATING, subject=self.subject),
            ]
        if rule.prefers:
            items.append(
                FeedbackInput(chosen_prediction_id=liked, rejected_prediction_id=disliked, subject=self.subject)
            )
        return items


class SimulatedUsers:
    def __init__(self, noise: float, seed: int) -> None:
        if not 0 <= noise <= 0.5:
            raise ValidationError("noise (the share of users who answer against the data) must be in [0, 0.5]")
        self.noise = noise
        self.rng = random.Random(seed)

    def react(self, index: int) -> PairReaction:
        return PairReaction(index, f"user-{index}", self.rng.random() >= self.noise)


def oracle_sets(pairs: Sequence[PreferencePair], rule: FeedbackRule, now: datetime) -> GenerationSets:
    """The training sets every pair would make if the loop had them all, truthful and none held
    out: what the oracle adapter is fitted on (through the loop's own ``plan``)."""
    provenance = Provenance((), (), None, now)

    def messages(pair: PreferencePair) -> tuple[Message, ...]:
        return tuple(Message(m["role"], m["content"]) for m in pair.messages)

    pairs_ = tuple(TrainingPair(messages(p), p.chosen, p.rejected, "preference", provenance) for p in pairs)
    if not rule.rates:
        return GenerationSets(preference=Split(pairs_))
    sft = tuple(SftRow(messages(p), p.chosen, "rating", provenance) for p in pairs)
    kto = tuple(
        KtoRow(messages(p), answer, good, "rating", provenance)
        for p in pairs
        for answer, good in ((p.chosen, True), (p.rejected, False))
    )
    return GenerationSets(sft=Split(sft), preference=Split(pairs_), kto=Split(kto))
