"""What the steps of generation curation share (``curate``, ``preferences``, ``split``). Pure.

Who voted (a hashed subject, or ``ANONYMOUS``), the conversation an answer answered, a row's
provenance and time order, the quality filter on one response, the normalised text two rows
must share to be one (memoised per ``curate`` call), and the counts every step adds to.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from typing import Any

from learnloop.curation.dedup import normalize_text
from learnloop.domain import FeedbackEvent, Served
from learnloop.policy import Policy
from learnloop.tasks.generation.answers import GenAnswer, Message
from learnloop.tasks.generation.sets import KtoRow, PreferencePair, Provenance, SftRow

ANONYMOUS = "anonymous"
CONFLICT_RULE = "per subject the latest vote (explicit over implicit), then the majority; a tie decides nothing"
Finish = tuple[str | None, str | None]  # the finish reasons of a pair's chosen and rejected answers
norm = functools.lru_cache(maxsize=1 << 14)(normalize_text)  # cleared after each curate


class Counts:
    """What every step counted: events by kind, events left out (``skipped``), conflicts, and
    per set its candidates, its train and held-out sizes and the rows dropped by reason."""

    def __init__(self) -> None:
        self.events: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.conflicts: Counter[str] = Counter()
        self.contradicted_subjects: set[str] = set()
        self.sets: dict[str, Counter[str]] = {"sft": Counter(), "preference": Counter(), "kto": Counter()}

    def to_dict(self) -> dict[str, Any]:
        conflicts: dict[str, Any] = {"rule": CONFLICT_RULE, **sorted_counts(self.conflicts)}
        conflicts["contradicted_subjects"] = len(self.contradicted_subjects)
        out: dict[str, Any] = {
            "events": sorted_counts(self.events),
            "skipped": sorted_counts(self.skipped),
            "conflicts": conflicts,
        }
        for name, counter in self.sets.items():
            kept = {k: counter[k] for k in ("candidates", "train", "held_out")}
            dropped = {k: v for k, v in sorted(counter.items()) if k not in kept and v}
            out[name] = {**kept, "dropped": dropped}
        return out


def sorted_counts(counter: Counter[str]) -> dict[str, int]:
    return {k: v for k, v in sorted(counter.items()) if v}


def voter_of(event: FeedbackEvent) -> str:
    return event.feedback.subject or ANONYMOUS


def conversation_of(served: Served, answer: GenAnswer) -> tuple[Message, ...]:
    return answer.messages or (Message("user", served.text),)


def provenance_of(events: Sequence[FeedbackEvent], prediction_ids: Sequence[str], version: int | None) -> Provenance:
    ordered = sorted(events, key=lambda e: (e.created_at, e.id))
    subjects = {e.feedback.subject for e in ordered}
    return Provenance(
        feedback_ids=tuple(e.id for e in ordered),
        prediction_ids=tuple(prediction_ids),
        subject=subjects.pop() if len(subjects) == 1 else None,
        created_at=ordered[-1].created_at,
        version=version,
    )


def response_quality(text: str, finish_reason: str | None, policy: Policy, *, wanted: bool = True) -> str | None:
    """Why a response may not train (None: it may). ``wanted``: training raises its likelihood
    (an SFT row, a chosen answer, a desirable KTO row), so one cut at the token limit may not
    train: it would teach the model to stop mid-sentence. An unwanted one (a rejected answer, an
    undesirable KTO row) may be cut: training lowers its likelihood, which teaches nothing about
    where answers end, and the answers cut off are often the ones users dislike most (a model
    that rambles, or writes code in a scene)."""
    if not text.strip():
        return "empty"
    if finish_reason == "length" and wanted:
        return "truncated"
    if len(text) > policy.generation.max_response_chars:
        return "too_long"
    return None


def messages_key(messages: Sequence[Message]) -> tuple[tuple[str, str], ...]:
    return tuple((m.role, norm(m.content)) for m in messages)


def row_order(row: SftRow | PreferencePair | KtoRow) -> tuple[Any, ...]:
    p = row.provenance
    text = row.chosen if isinstance(row, PreferencePair) else row.response
    return (p.created_at, p.feedback_ids, p.prediction_ids, text)
