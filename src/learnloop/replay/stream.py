"""A replay stream: labelled items in the order they arrive, in named segments.

Files concatenate in the order given, so a stream of restaurant reviews followed by phone
reviews is a domain shift at the boundary. Inside a segment the order is kept, shuffled
(the default: a file sorted by label is no stream), or arranged for a label shift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from learnloop.datasets.label_names import rename_labels
from learnloop.datasets.readers import read_labelled
from learnloop.errors import ValidationError

if TYPE_CHECKING:
    import numpy as np


class Order(StrEnum):
    KEEP = "keep"  # the file's order
    SHUFFLE = "shuffle"  # a random order per segment
    LABEL_SHIFT = "label-shift"  # each segment drifts from one label to another


@dataclass(frozen=True)
class DataFile:
    """A labelled file and how to read it (the options of ``learnloop init``)."""

    path: Path
    text_column: str = "text"
    label_column: str = "label"
    fmt: str | None = None
    header: bool = True
    quoting: str | None = None
    name: str | None = None  # the segment's name; default: the file's stem
    label_names: Mapping[str, str] = field(default_factory=dict)  # label value -> the name the model uses

    @property
    def segment_name(self) -> str:
        if self.name:
            return self.name
        stem = self.path.name
        for suffix in (".gz", ".jsonl", ".csv", ".tsv", ".txt"):
            stem = stem.removesuffix(suffix)
        return stem

    def read(self) -> tuple[list[str], list[str]]:
        data = read_labelled(
            self.path,
            text_column=self.text_column,
            label_column=self.label_column,
            fmt=self.fmt,
            header=self.header,
            quoting=self.quoting,
        )
        return data.texts, rename_labels(data.labels, self.label_names, str(self.path))


@dataclass(frozen=True)
class Segment:
    name: str
    start: int  # index of its first item in the stream
    stop: int  # one past its last

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Stream:
    texts: list[str]
    labels: list[str]
    segments: list[Segment]

    def __len__(self) -> int:
        return len(self.texts)


def arrange(labels: Sequence[str], order: Order, rng: np.random.Generator) -> list[int]:
    """Indices of one segment's items in the order they will arrive."""
    n = len(labels)
    if order is Order.KEEP:
        return list(range(n))
    if order is Order.SHUFFLE:
        return [int(i) for i in rng.permutation(n)]
    # Label shift: sort by label rank with jitter, so the segment starts dominated by the
    # first label, ends dominated by the last, and mixes in between.
    ranks = {label: r for r, label in enumerate(sorted(set(labels)))}
    spread = max(1, len(ranks) - 1)
    import numpy as np  # here: the CLI imports this module (``Order``) for --help, numpy only for a replay

    keys = np.array([ranks[label] / spread for label in labels]) + rng.uniform(0.0, 1.0, n)
    return [int(i) for i in np.argsort(keys, kind="stable")]


def load_stream(
    files: Sequence[DataFile],
    *,
    order: Order = Order.SHUFFLE,
    limit_per_segment: int | None = None,
    seed: int = 0,
) -> Stream:
    """Read and concatenate the files into one stream; each file is one segment."""
    if not files:
        raise ValidationError("a replay needs at least one stream file", field="stream")
    import numpy as np

    rng = np.random.default_rng(seed)
    texts: list[str] = []
    labels: list[str] = []
    segments: list[Segment] = []
    names: set[str] = set()
    for file in files:
        seg_texts, seg_labels = file.read()
        chosen = list(range(len(seg_texts)))
        if limit_per_segment is not None and limit_per_segment < len(chosen):
            # Keep: the first items; otherwise a random subset, then arranged.
            chosen = (
                chosen[:limit_per_segment]
                if order is Order.KEEP
                else sorted(int(i) for i in rng.choice(len(chosen), limit_per_segment, replace=False))
            )
        indices = [chosen[i] for i in arrange([seg_labels[i] for i in chosen], order, rng)]
        name = file.segment_name
        while name in names:  # the same file twice: two segments, told apart
            name += "'"
        names.add(name)
        start = len(texts)
        texts.extend(seg_texts[i] for i in indices)
        labels.extend(seg_labels[i] for i in indices)
        segments.append(Segment(name, start, len(texts)))
    return Stream(texts, labels, segments)
