"""Curation tools every task uses: PII scrubbing, near-duplicate grouping, trust-weighted votes
(Dawid-Skene) and per-subject caps, the golden-set split. How a task's feedback becomes training
data is the task's own (``learnloop.tasks``)."""

from learnloop.curation.conflicts import (
    CapResult,
    DawidSkeneResult,
    Resolution,
    Vote,
    dawid_skene,
    majority_vote,
    subject_caps,
)
from learnloop.curation.dedup import (
    DedupResult,
    DroppedDuplicate,
    dedupe,
    find_duplicate_groups,
    group_ids,
    normalize_text,
)
from learnloop.curation.golden import golden_indices, split_golden
from learnloop.curation.pii import Scrubber, ScrubResult

__all__ = [
    "CapResult",
    "DawidSkeneResult",
    "DedupResult",
    "DroppedDuplicate",
    "Resolution",
    "ScrubResult",
    "Scrubber",
    "Vote",
    "dawid_skene",
    "dedupe",
    "find_duplicate_groups",
    "golden_indices",
    "group_ids",
    "majority_vote",
    "normalize_text",
    "split_golden",
    "subject_caps",
]
