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
from collections.abc import Iterable, Mapping, Sequence
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


def derive_examples(
    rows: Iterable[Mapping[str, Any]], labels: Sequence[str]
) -> tuple[list[LabelledExample], Counter[str]]:
    """Feedback rows (oldest first, joined with their predictions) -> labelled examples."""
    counts: Counter[str] = Counter()
    best: dict[str, tuple[int, Mapping[str, Any]]] = {}  # one winner per prediction or text
    for row in rows:
        counts[f"events.{row['kind']}"] += 1
        if row["kind"] == "example":
            key = f"text:{normalize_text(row['text'])}"
        elif row["prediction_text"] is None:
            counts["pending_prediction"] += 1
            continue
        else:
            key = f"prediction:{row['prediction_id']}"
        priority = EVENT_PRIORITY.get(row["kind"], 0)
        current = best.get(key)
        if current is None or priority >= current[0]:
            if current is not None:
                counts["superseded"] += 1
            best[key] = (priority, row)
        else:
            counts["superseded"] += 1
    by_text: dict[str, LabelledExample] = {}
    for _, row in sorted(best.values(), key=lambda item: (item[1]["created_at"], item[1]["id"])):
        label, outcome = implied_label(row, labels)
        if label is None:
            counts[outcome] += 1
            continue
        text = row["text"] if row["kind"] == "example" else row["prediction_text"]
        norm = normalize_text(text)
        if norm in by_text:
            counts["same_text_relabelled" if by_text[norm].label != label else "duplicate_text"] += 1
            del by_text[norm]  # re-insert so the dict stays in time order
        by_text[norm] = LabelledExample(
            text,
            label,
            f"feedback:{row['kind']}",
            row["created_at"],
            row["id"],
            row.get("metadata"),
            row.get("subject"),
        )
    examples = list(by_text.values())
    counts["examples"] = len(examples)
    return examples, counts
