"""Curation: feedback -> labelled examples -> immutable, content-addressed snapshots."""

from learnloop.curation.conflicts import (
    CapResult,
    DawidSkeneResult,
    Resolution,
    Vote,
    dawid_skene,
    majority_vote,
    subject_caps,
)
from learnloop.curation.dedup import DedupResult, DroppedDuplicate, dedupe, find_duplicate_groups, group_ids
from learnloop.curation.golden import split_golden
from learnloop.curation.labels import LabelledExample, derive_examples, normalize_text
from learnloop.curation.noise import NoiseFlag, find_label_issues, out_of_sample_probabilities
from learnloop.curation.pii import Scrubber, ScrubResult
from learnloop.curation.snapshot import Snapshot, build_snapshot, content_hash

__all__ = [
    "CapResult",
    "DawidSkeneResult",
    "DedupResult",
    "DroppedDuplicate",
    "LabelledExample",
    "NoiseFlag",
    "Resolution",
    "ScrubResult",
    "Scrubber",
    "Snapshot",
    "Vote",
    "build_snapshot",
    "content_hash",
    "dawid_skene",
    "dedupe",
    "derive_examples",
    "find_duplicate_groups",
    "find_label_issues",
    "group_ids",
    "majority_vote",
    "normalize_text",
    "out_of_sample_probabilities",
    "split_golden",
    "subject_caps",
]
