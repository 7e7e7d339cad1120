"""Exact and near-duplicate texts: MinHash signatures, LSH banding, connected groups. Pure, numpy only.

* **Exact duplicates** share their normalised text (``normalize_text``: whitespace collapsed,
  case folded) once punctuation is set aside ("Great phone!!!" and "great phone." are one
  text: short feedback differs in punctuation far more than in words, and a character 5-gram
  Jaccard between two 50-character sentences that differ in one comma is only ~0.8).
* **Near duplicates** have a Jaccard similarity of their shingle sets (character 5-grams of the
  normalised text by default, or word n-grams) of at least ``threshold``. Candidate pairs come
  from MinHash + LSH banding (``num_perm`` hashes cut into bands so that a pair at the threshold
  becomes a candidate with probability 0.95, see ``lsh_bands``) and each candidate is confirmed
  on its *exact* Jaccard, so a reported pair is always above the threshold; a true pair is
  missed only with the small probability LSH leaves (at 0.8 with 128 hashes, 18 bands of 7
  rows: 1.4% of pairs at the threshold, 0.1% at 0.85).
* Candidate pairs and groups are made by ``grouping.Grouping`` (which a retrain keeps for
  the rows that do not change between retrains); in an LSH bucket the first ``STAR_ABOVE``
  (40) members are compared pairwise and later ones with the first member only.
* A **group** is a connected component of such pairs (so A~B and B~C put A, B and C together
  even if A and C differ more). ``group_ids`` gives every text its group id, so a split can keep
  a group on one side and near-duplicates never straddle training and evaluation sets.
* ``dedupe`` keeps one example per group, the **latest** (largest ``created_at``; an example
  without a time, such as bootstrap data, counts as the oldest; among equals the later in the
  input), and returns every other one with its reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, NamedTuple, Protocol, TypeVar

from learnloop.curation.grouping import Grouping, GroupingSettings
from learnloop.curation.minhash import Unit, dedup_key, lsh_bands, minhash_signatures, normalize_text

__all__ = [
    "DedupResult",
    "DroppedDuplicate",
    "dedup_key",
    "dedupe",
    "find_duplicate_groups",
    "group_ids",
    "lsh_bands",
    "minhash_signatures",
    "normalize_text",
]


def find_duplicate_groups(
    texts: Sequence[str],
    *,
    threshold: float = 0.8,
    shingle: int = 5,
    unit: Unit = "char",
    num_perm: int = 128,
    seed: int = 0,
) -> list[list[int]]:
    """Groups (indices, ascending; groups ordered by first index) of two or more texts that are
    exact or near duplicates of one another; a text with no duplicate is in no group."""
    ids = group_ids(texts, threshold=threshold, shingle=shingle, unit=unit, num_perm=num_perm, seed=seed)
    members: dict[int, list[int]] = {}
    for i, gid in enumerate(ids):
        members.setdefault(gid, []).append(i)
    return [group for group in members.values() if len(group) > 1]


def group_ids(
    texts: Sequence[str],
    *,
    threshold: float = 0.8,
    shingle: int = 5,
    unit: Unit = "char",
    num_perm: int = 128,
    seed: int = 0,
) -> list[int]:
    """For every text the id of its duplicate group: the smallest index in the group (a text
    without duplicates has its own index). Deterministic for a given ``seed``."""
    settings = GroupingSettings(threshold=threshold, shingle=shingle, unit=unit, num_perm=num_perm, seed=seed)
    return Grouping.of(texts, settings).ids()


class Dated(Protocol):
    """What ``dedupe`` needs of an example: its text, its label (if any) and when it was given."""

    @property
    def text(self) -> str: ...

    @property
    def label(self) -> str | None: ...

    @property
    def created_at(self) -> datetime | None: ...


E = TypeVar("E", bound=Dated)


@dataclass(frozen=True)
class DroppedDuplicate:
    """An example ``dedupe`` left out: its ``index`` in the input, the index of the example kept
    for its group, the reason (``exact_duplicate`` or ``near_duplicate``) and whether the kept
    example carries another label."""

    index: int
    kept_index: int
    reason: str
    label_differs: bool


class DedupResult(NamedTuple, Generic[E]):
    kept: list[E]
    dropped: list[DroppedDuplicate]

    def counts(self) -> Counter[str]:
        """Dropped examples by reason, plus ``label_differs`` (dropped with another label than the kept one)."""
        counts = Counter(d.reason for d in self.dropped)
        counts["label_differs"] = sum(d.label_differs for d in self.dropped)
        return counts


def _recency(item: tuple[int, Dated]) -> tuple[bool, datetime | None, int]:
    index, example = item
    return (example.created_at is not None, example.created_at, index)


def dedupe(
    examples: Sequence[E],
    *,
    threshold: float = 0.8,
    shingle: int = 5,
    unit: Unit = "char",
    num_perm: int = 128,
    seed: int = 0,
) -> DedupResult[E]:
    """One example per duplicate group, the latest (see the module doc), in input order."""
    ids = group_ids(
        [ex.text for ex in examples], threshold=threshold, shingle=shingle, unit=unit, num_perm=num_perm, seed=seed
    )
    groups: dict[int, list[int]] = {}
    for i, gid in enumerate(ids):
        groups.setdefault(gid, []).append(i)
    keep: set[int] = set()
    dropped: list[DroppedDuplicate] = []
    for members in groups.values():
        winner = max(((i, examples[i]) for i in members), key=_recency)[0]
        keep.add(winner)
        kept = examples[winner]
        for i in members:
            if i != winner:
                same = dedup_key(examples[i].text) == dedup_key(kept.text)
                reason = "exact_duplicate" if same else "near_duplicate"
                dropped.append(DroppedDuplicate(i, winner, reason, examples[i].label != kept.label))
    dropped.sort(key=lambda d: d.index)
    return DedupResult([ex for i, ex in enumerate(examples) if i in keep], dropped)
