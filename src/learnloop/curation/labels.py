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
* the same text labelled differently: the latest label wins.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


@dataclass(frozen=True)
class LabelledExample:
    text: str
    label: str
    source: str  # "bootstrap" or "feedback:<kind>"
    created_at: datetime | None = None
    feedback_id: str | None = None
    metadata: Mapping[str, Any] | None = None  # the feedback's metadata (slices: domain, language, ...)
    subject: str | None = None  # who gave it (hashed), for per-subject caps
    weight: float = 1.0  # training weight (trust of the resolution, noise filter); 1: as today


# Several events on one prediction: an explicit label beats thumbs or ratings.
EVENT_PRIORITY = {"label": 2, "example": 2, "thumbs": 1, "rating": 1}


def implied_label(row: Mapping[str, Any], labels: Sequence[str]) -> tuple[str | None, str]:
    """(label, outcome) for one event whose prediction is known: ``labelled``, ``neutral``
    (a rating of 3), ``negative`` (multi-class thumbs down: not the predicted label) or why not."""
    kind = row["kind"]
    if kind in ("label", "example"):
        return row["label"], "labelled"
    if kind == "thumbs":
        positive = row["thumbs"] == "up"
    elif kind == "rating":
        if row["rating"] == 3:
            return None, "neutral"
        positive = row["rating"] >= 4
    else:
        return None, "unknown_kind"
    predicted = row["predicted_label"]
    if predicted not in labels:  # a prediction of a model whose labels were different
        return None, "unknown_predicted_label"
    if positive:
        return predicted, "labelled"
    if len(labels) == 2:
        return next(lab for lab in labels if lab != predicted), "labelled"
    return None, "negative"


def event_key(row: Mapping[str, Any]) -> str | None:
    """What one event is about: a standalone text, or a logged prediction (None while the
    prediction is not in the log yet: pending)."""
    if row["kind"] == "example":
        return f"text:{normalize_text(row['text'])}"
    if row["prediction_text"] is None:
        return None
    return f"prediction:{row['prediction_id']}"


def winning_events(
    rows: Iterable[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], Hashable | None] = event_key
) -> tuple[list[Mapping[str, Any]], Counter[str]]:
    """The deciding event per ``key`` (rows oldest first): an explicit label beats thumbs or
    ratings, and within the same priority the latest wins. Winners in time order; counts of
    events by kind, ``pending_prediction`` (key None) and ``superseded``."""
    counts: Counter[str] = Counter()
    best: dict[Hashable, tuple[int, Mapping[str, Any]]] = {}
    for row in rows:
        counts[f"events.{row['kind']}"] += 1
        k = key(row)
        if k is None:
            counts["pending_prediction"] += 1
            continue
        priority = EVENT_PRIORITY.get(row["kind"], 0)
        current = best.get(k)
        if current is not None:
            counts["superseded"] += 1
        if current is None or priority >= current[0]:
            best[k] = (priority, row)
    winners = sorted((row for _, row in best.values()), key=lambda r: (r["created_at"], r["id"]))
    return winners, counts


def event_text(row: Mapping[str, Any]) -> str:
    """The text an event labels: the standalone example's, or the prediction's."""
    return str(row["text"] if row["kind"] == "example" else row["prediction_text"])


def feedback_example(row: Mapping[str, Any], label: str, weight: float = 1.0) -> LabelledExample:
    """The training example an event gives."""
    return LabelledExample(
        event_text(row),
        label,
        f"feedback:{row['kind']}",
        row["created_at"],
        row["id"],
        row.get("metadata"),
        row.get("subject"),
        weight,
    )


def derive_examples(
    rows: Iterable[Mapping[str, Any]], labels: Sequence[str]
) -> tuple[list[LabelledExample], Counter[str]]:
    """Feedback rows (oldest first, joined with their predictions) -> labelled examples."""
    winners, counts = winning_events(rows)
    by_text: dict[str, LabelledExample] = {}
    for row in winners:
        label, outcome = implied_label(row, labels)
        if label is None:
            counts[outcome] += 1
            continue
        example = feedback_example(row, label)
        norm = normalize_text(example.text)
        if norm in by_text:
            counts["same_text_relabelled" if by_text[norm].label != label else "duplicate_text"] += 1
            del by_text[norm]  # re-insert so the dict stays in time order
        by_text[norm] = example
    examples = list(by_text.values())
    counts["examples"] = len(examples)
    return examples, counts
