"""Dataset snapshots: what a candidate trains on and what it is judged on.

* **train** = bootstrap training rows + every labelled feedback event, in time order, minus
  any text of the golden set (normalised match);
* **recent validation** = the newest labelled feedback the *champion* never saw (after its
  snapshot's cutoff; at most ``recent_holdout_max`` rows), cut into ``recent_blocks`` blocks
  by time. The candidate is judged by *forward chaining*: for each block after the first, a
  model is fitted on everything before the block (never on the block itself or anything
  after it, and never on a text of the block) and scored on the block. The champion is
  scored on the same examples. The final candidate then trains on all of it, so new
  feedback is never withheld from the version that serves, and almost all of it still
  counts as evidence for or against the change.

The snapshot is content-addressed: its hash covers every row and its role, so a version
names exactly what it saw.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from learnloop.curation.labels import LabelledExample, normalize_text
from learnloop.domain import Policy


@dataclass(frozen=True)
class Fold:
    """One forward-chaining step: fit on ``train`` (indices into ``Snapshot.train``), score on
    ``evaluate`` (indices into ``Snapshot.train`` too: the block's examples)."""

    train: list[int]
    evaluate: list[int]


@dataclass(frozen=True)
class Snapshot:
    hash: str
    train: list[LabelledExample]
    folds: list[Fold]
    cutoff: datetime | None
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def recent(self) -> list[LabelledExample]:
        """Every example some fold is judged on, in time order."""
        return [self.train[i] for fold in self.folds for i in fold.evaluate]

    def to_jsonl_gz(self) -> bytes:
        block_of = {i: k for k, fold in enumerate(self.folds, start=1) for i in fold.evaluate}
        lines = [_row_bytes(ex, block_of.get(i)) for i, ex in enumerate(self.train)]
        return gzip.compress(b"".join(lines), mtime=0)


def _row_bytes(ex: LabelledExample, block: int | None) -> bytes:
    row = {
        "text": ex.text,
        "label": ex.label,
        "source": ex.source,
        "feedback_id": ex.feedback_id,
        "validation_block": block,
    }
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS) + b"\n"


def content_hash(train: Sequence[LabelledExample], folds: Sequence[Fold]) -> str:
    block_of = {i: k for k, fold in enumerate(folds, start=1) for i in fold.evaluate}
    digest = hashlib.sha256()
    for i, ex in enumerate(train):
        digest.update(_row_bytes(ex, block_of.get(i)))
    return digest.hexdigest()


def forward_folds(train: Sequence[LabelledExample], start: int, blocks: int) -> list[Fold]:
    """Cut ``train[start:]`` into ``blocks`` time blocks; a fold per block after the first."""
    n = len(train) - start
    if n < blocks or blocks < 2:
        return []
    bounds = [start + round(k * n / blocks) for k in range(blocks + 1)]
    folds = []
    for k in range(1, blocks):
        block = range(bounds[k], bounds[k + 1])
        texts = {normalize_text(train[i].text) for i in block}
        fit_on = [i for i in range(bounds[k]) if normalize_text(train[i].text) not in texts]
        folds.append(Fold(fit_on, list(block)))
    return folds


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
    golden = {normalize_text(t) for t in golden_texts}
    train: list[LabelledExample] = []
    dropped_overlap = 0
    for text, label in bootstrap:
        if normalize_text(text) in golden:
            dropped_overlap += 1
            continue
        train.append(LabelledExample(text, label, "bootstrap"))
    n_bootstrap = len(train)
    ordered = sorted(feedback, key=lambda ex: (ex.created_at is None, ex.created_at))
    for ex in ordered:
        if normalize_text(ex.text) in golden:
            dropped_overlap += 1
            continue
        train.append(ex)
    unseen = sum(
        1
        for ex in train[n_bootstrap:]
        if champion_cutoff is None or (ex.created_at is not None and ex.created_at > champion_cutoff)
    )
    window = min(unseen, policy.recent_holdout_max)
    folds = forward_folds(train, len(train) - window, policy.recent_blocks)
    counts: dict[str, Any] = {
        "train": len(train),
        "train_bootstrap": n_bootstrap,
        "train_feedback": len(train) - n_bootstrap,
        "unseen_by_champion": unseen,
        "recent_validation": sum(len(f.evaluate) for f in folds),
        "recent_blocks": len(folds) + 1 if folds else 0,
        "dropped_overlap_with_golden": dropped_overlap,
        "feedback": dict(feedback_counts or {}),
    }
    return Snapshot(content_hash(train, folds), train, folds, cutoff, counts)
