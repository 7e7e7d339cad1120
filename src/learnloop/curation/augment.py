"""Synthetic training rows for thin classes: EDA-style text augmentation (Wei & Zou, "EDA: Easy
Data Augmentation Techniques for Boosting Performance on Text Classification", EMNLP 2019).

A class with fewer than ``min_examples`` real rows gets synthetic ones until it has that many
(at most ``MAX_PER_SOURCE`` per real row, so one example is not copied fifty times). Each
synthetic row is a real row of the class changed by one operation:

* ``swap``: two words trade places (EDA's random swap);
* ``delete``: each word is dropped with probability ``DELETE_P`` (EDA's random deletion);
* ``insert``: a word from *another row of the same class* is put at a random place.

EDA's fourth operation, synonym replacement, needs a thesaurus (WordNet); none ships inside a
PyPI wheel (NLTK downloads its corpora at run time), so ``insert`` takes its words from the
class itself instead, which keeps the vocabulary the class already uses. ``eda`` picks one of
the three per row. Everything is drawn from one ``random.Random(seed)``: the same rows and
seed give the same synthetic rows, so a snapshot's content hash is reproducible.

Pure logic on (text, label) pairs; the snapshot decides which rows may be sources (never a
row some evaluation scores) and marks what comes back.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from learnloop.policy import AUGMENT_METHODS as METHODS

MAX_PER_SOURCE = 10  # synthetic rows per real row of a class, at most
DELETE_P = 0.1


@dataclass(frozen=True)
class SyntheticRow:
    text: str
    label: str
    source: int  # index of the real row it was made from
    operation: str  # "swap", "delete" or "insert"


def augment_thin(
    rows: Sequence[tuple[str, str]],
    *,
    real_counts: Counter[str] | None = None,
    min_examples: int,
    method: str = "eda",
    seed: int = 0,
) -> list[SyntheticRow]:
    """Synthetic rows for every label of ``rows`` with fewer than ``min_examples`` real rows
    (counted in ``real_counts`` when given, e.g. over a larger set than the sources), made
    from ``rows`` of that label. Labels in sorted order, so the result does not depend on
    dict order; an empty list when no class is thin or ``min_examples`` is 0."""
    if method not in METHODS:
        raise ValueError(f"unknown augmentation method {method!r}; known: {', '.join(METHODS)}")
    counts = real_counts if real_counts is not None else Counter(label for _, label in rows)
    by_label: dict[str, list[int]] = {}
    for i, (_, label) in enumerate(rows):
        by_label.setdefault(label, []).append(i)
    rng = random.Random(seed)
    made: list[SyntheticRow] = []
    for label in sorted(by_label):
        sources = by_label[label]
        wanted = min(min_examples - counts[label], MAX_PER_SOURCE * len(sources))
        if wanted <= 0:
            continue
        pool = [word for i in sources for word in rows[i][0].split()]  # the class's words, for ``insert``
        for k in range(wanted):
            source = sources[k % len(sources)]  # round robin: every source is used as evenly as it can be
            operation = rng.choice(METHODS[1:]) if method == "eda" else method
            text = _apply(operation, rows[source][0].split(), pool, rng) or rows[source][0]
            made.append(SyntheticRow(text, label, source, operation))
    return made


def _apply(operation: str, words: list[str], pool: Sequence[str], rng: random.Random) -> str:
    """One EDA operation on a row's words (a row too short for it comes back unchanged)."""
    words = list(words)
    if operation == "swap" and len(words) >= 2:
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = words[j], words[i]
    elif operation == "delete" and len(words) >= 2:
        kept = [w for w in words if rng.random() >= DELETE_P]
        words = kept or [rng.choice(words)]  # never delete every word
    elif operation == "insert" and pool:
        words.insert(rng.randrange(len(words) + 1), rng.choice(pool))
    return " ".join(words)
