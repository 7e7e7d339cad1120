"""Dataset snapshots: what a candidate trains on and what it is judged on.

* **train** = bootstrap training rows + labelled feedback, minus the recent holdout;
* **recent holdout** = the newest labelled feedback that the *champion* never saw (after its
  snapshot's cutoff), at most ``recent_holdout_fraction`` of the feedback and
  ``recent_holdout_max`` rows: split by time, never at random, so no version is judged on
  data it was trained on;
* a text in the golden set or the holdout never appears in train (normalised match).

The snapshot is content-addressed: its hash covers every row, so a version names exactly
what it saw.
"""

from __future__ import annotations

import gzip
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from learnloop.curation.labels import LabelledExample, normalize_text
from learnloop.domain import Policy


@dataclass(frozen=True)
class Snapshot:
    hash: str
    train: list[LabelledExample]
    recent: list[LabelledExample]
    cutoff: datetime | None
    counts: dict[str, Any] = field(default_factory=dict)

    def to_jsonl_gz(self) -> bytes:
        lines = [_row_bytes(ex, "train") for ex in self.train] + [_row_bytes(ex, "recent") for ex in self.recent]
        return gzip.compress(b"".join(lines), mtime=0)


def _row_bytes(ex: LabelledExample, role: str) -> bytes:
    row = {
        "role": role,
        "text": ex.text,
        "label": ex.label,
        "source": ex.source,
        "feedback_id": ex.feedback_id,
    }
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS) + b"\n"


def content_hash(train: Sequence[LabelledExample], recent: Sequence[LabelledExample]) -> str:
    digest = hashlib.sha256()
    for ex in train:
        digest.update(_row_bytes(ex, "train"))
    for ex in recent:
        digest.update(_row_bytes(ex, "recent"))
    return digest.hexdigest()


def build_snapshot(
    *,
    bootstrap: Sequence[tuple[str, str]],
    feedback: Sequence[LabelledExample],
    golden_texts: Sequence[str],
    champion_cutoff: datetime | None,
    cutoff: datetime | None,
    policy: Policy,
    feedback_counts: dict[str, int] | None = None,
) -> Snapshot:
    unseen = [ex for ex in feedback if champion_cutoff is None or (ex.created_at and ex.created_at > champion_cutoff)]
    size = min(
        math.ceil(policy.recent_holdout_fraction * len(feedback)),
        policy.recent_holdout_max,
        len(unseen),
    )
    recent = unseen[len(unseen) - size :] if size else []
    recent_ids = {ex.feedback_id for ex in recent}
    held_out = {normalize_text(t) for t in golden_texts} | {normalize_text(ex.text) for ex in recent}

    train: list[LabelledExample] = []
    dropped_overlap = 0
    for text, label in bootstrap:
        if normalize_text(text) in held_out:
            dropped_overlap += 1
            continue
        train.append(LabelledExample(text, label, "bootstrap"))
    for ex in feedback:
        if ex.feedback_id in recent_ids:
            continue
        if normalize_text(ex.text) in held_out:
            dropped_overlap += 1
            continue
        train.append(ex)
    counts: dict[str, Any] = {
        "train": len(train),
        "train_bootstrap": sum(1 for ex in train if ex.source == "bootstrap"),
        "train_feedback": sum(1 for ex in train if ex.source != "bootstrap"),
        "recent_holdout": len(recent),
        "dropped_overlap_with_evaluation": dropped_overlap,
        "feedback": dict(feedback_counts or {}),
    }
    return Snapshot(content_hash(train, recent), train, recent, cutoff, counts)
