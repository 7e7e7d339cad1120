"""Curation: feedback -> labelled examples -> immutable, content-addressed snapshots."""

from learnloop.curation.golden import split_golden
from learnloop.curation.labels import LabelledExample, derive_examples, normalize_text
from learnloop.curation.snapshot import Snapshot, build_snapshot, content_hash

__all__ = [
    "LabelledExample",
    "Snapshot",
    "build_snapshot",
    "content_hash",
    "derive_examples",
    "normalize_text",
    "split_golden",
]
