"""The three training sets a generative model's feedback becomes, as plain records.

* ``SftRow``: a conversation and the response it should get (supervised fine-tuning);
* ``PreferencePair``: a conversation, a chosen and a rejected response (DPO);
* ``KtoRow``: a conversation, one response and whether it is desirable (KTO, unpaired).

Every row carries its ``Provenance`` (the feedback events and answers it came from, the subject
who gave it, when) and a training ``weight``. ``GenerationSets`` holds each set as a ``Split``:
the part training sees and the part about the newest answers, which it never sees (held out).
Rows go to and from JSON (``to_json`` / ``row_from_json``) for snapshots and exports; pure, no
I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from learnloop.tasks.generation.answers import Message

SetName = Literal["sft", "preference", "kto"]
SET_NAMES: tuple[SetName, ...] = ("sft", "preference", "kto")
Part = Literal["train", "held_out"]
PARTS: tuple[Part, ...] = ("train", "held_out")


@dataclass(frozen=True)
class Provenance:
    """Where a row came from: the feedback events, the logged answers (none for a standalone
    event), the subject (hashed; None: anonymous or several), the version that answered, and the
    row's time (its newest event: what rows are ordered by)."""

    feedback_ids: tuple[str, ...]
    prediction_ids: tuple[str, ...]
    subject: str | None
    created_at: datetime
    version: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "feedback_ids": list(self.feedback_ids),
            "prediction_ids": list(self.prediction_ids),
            "subject": self.subject,
            "created_at": self.created_at.isoformat(),
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Provenance:
        return cls(
            feedback_ids=tuple(data["feedback_ids"]),
            prediction_ids=tuple(data["prediction_ids"]),
            subject=data.get("subject"),
            created_at=datetime.fromisoformat(data["created_at"]),
            version=data.get("version"),
        )


def _messages_json(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [m.to_json() for m in messages]


def _messages_of(data: Sequence[Mapping[str, Any]]) -> tuple[Message, ...]:
    return tuple(Message(str(m["role"]), str(m["content"])) for m in data)


@dataclass(frozen=True)
class SftRow:
    messages: tuple[Message, ...]  # the conversation up to the answer
    response: str
    source: str  # "rating", "thumbs", "correction"
    provenance: Provenance
    weight: float = 1.0

    @property
    def created_at(self) -> datetime:
        return self.provenance.created_at

    def to_json(self) -> dict[str, Any]:
        return {
            "messages": _messages_json(self.messages),
            "response": self.response,
            "source": self.source,
            "provenance": self.provenance.to_json(),
            "weight": self.weight,
        }


@dataclass(frozen=True)
class PreferencePair:
    messages: tuple[Message, ...]
    chosen: str
    rejected: str
    source: str  # "preference", "preference:standalone", "correction", "ratings"
    provenance: Provenance
    weight: float = 1.0  # an explicit preference's strength; 1 for derived pairs

    @property
    def created_at(self) -> datetime:
        return self.provenance.created_at

    def to_json(self) -> dict[str, Any]:
        return {
            "messages": _messages_json(self.messages),
            "chosen": self.chosen,
            "rejected": self.rejected,
            "source": self.source,
            "provenance": self.provenance.to_json(),
            "weight": self.weight,
        }


@dataclass(frozen=True)
class KtoRow:
    messages: tuple[Message, ...]
    response: str
    desirable: bool
    source: str  # "rating", "thumbs", "implicit", "correction"
    provenance: Provenance
    weight: float = 1.0

    @property
    def created_at(self) -> datetime:
        return self.provenance.created_at

    def to_json(self) -> dict[str, Any]:
        return {
            "messages": _messages_json(self.messages),
            "response": self.response,
            "desirable": self.desirable,
            "source": self.source,
            "provenance": self.provenance.to_json(),
            "weight": self.weight,
        }


Row = SftRow | PreferencePair | KtoRow
R = TypeVar("R", SftRow, PreferencePair, KtoRow)


def row_from_json(name: SetName, data: Mapping[str, Any]) -> Row:
    """The row of set ``name`` that ``to_json`` wrote."""
    messages = _messages_of(data["messages"])
    provenance = Provenance.from_json(data["provenance"])
    weight = float(data.get("weight", 1.0))
    if name == "sft":
        return SftRow(messages, str(data["response"]), str(data["source"]), provenance, weight)
    if name == "preference":
        return PreferencePair(
            messages, str(data["chosen"]), str(data["rejected"]), str(data["source"]), provenance, weight
        )
    return KtoRow(messages, str(data["response"]), bool(data["desirable"]), str(data["source"]), provenance, weight)


@dataclass(frozen=True)
class Split(Generic[R]):
    """One set in time order: ``train`` (what training sees) and ``held_out`` (the rows about
    the newest answers, never trained on)."""

    train: tuple[R, ...] = ()
    held_out: tuple[R, ...] = ()

    def part(self, part: Part) -> tuple[R, ...]:
        return self.train if part == "train" else self.held_out


@dataclass(frozen=True)
class GenerationSets:
    """The three sets, the counts of every step (kept and left out, by reason) and the cutoff
    (feedback up to it was considered)."""

    sft: Split[SftRow] = field(default_factory=Split)
    preference: Split[PreferencePair] = field(default_factory=Split)
    kto: Split[KtoRow] = field(default_factory=Split)
    counts: dict[str, Any] = field(default_factory=dict)
    cutoff: datetime | None = None

    def rows(self, name: SetName, part: Part) -> tuple[Row, ...]:
        split: Split[Any] = getattr(self, name)
        rows: tuple[Row, ...] = split.part(part)
        return rows
