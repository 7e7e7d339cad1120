"""Slices of the judged answers where the error rate is significantly above the rest. Pure
logic, no I/O.

A slice is a set of judged answers that share something a person can name: the label the
model gave (``predicted=positive``), a metadata field of the feedback (``metadata.airline=United``),
a length bucket (the quartiles of the texts' word counts), or a word (``term=delay``: the texts
that contain it, for the ``MAX_TERMS`` most frequent words). Each slice with at least
``MIN_SLICE`` answers in it and outside it is tested against the rest with Fisher's exact test
(one-sided: its error rate is higher), and the p-values of all slices tested together are
corrected with Benjamini-Hochberg (a false discovery rate of ``ALPHA``): with hundreds of words
tested, some would look significant by chance alone. ``excess`` is the same test for any
groups (the clusters' regions use it too).

Feedback is not a random sample (users speak up more when an answer is wrong), so error rates
here read high; a slice is compared with the rest of the same feedback, which shares the bias.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from learnloop.monitoring.patterns.judged import Judged

MIN_SLICE = 10
MAX_TERMS = 200
MAX_FIELD_VALUES = 20  # a metadata field with more values than this is an id, not a group
ALPHA = 0.05
_WORD = re.compile(r"[a-z][a-z']+")


@dataclass(frozen=True)
class Excess:
    """A group's errors against the rest: Fisher's exact test (one-sided), ``q`` corrected."""

    n: int
    errors: int
    rest_n: int
    rest_errors: int
    p_value: float
    q_value: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.n if self.n else 0.0

    @property
    def rest_rate(self) -> float:
        return self.rest_errors / self.rest_n if self.rest_n else 0.0

    @property
    def significant(self) -> bool:
        return self.q_value < ALPHA and self.error_rate > self.rest_rate


@dataclass(frozen=True)
class ErrorSlice:
    key: str  # "predicted=positive", "metadata.airline=United", "length=3-7 words", "term=delay"
    kind: str  # predicted, metadata, length, term
    test: Excess


def excess(groups: Sequence[tuple[int, int]], total_errors: int, total: int) -> list[Excess]:
    """For each group's (errors, n): its test against everything outside it, the p-values
    corrected together (Benjamini-Hochberg)."""
    from scipy.stats import fisher_exact
    from statsmodels.stats.multitest import multipletests

    if not groups:
        return []
    p_values = []
    for errors, n in groups:
        rest_errors, rest_n = total_errors - errors, total - n
        table = [[errors, n - errors], [rest_errors, rest_n - rest_errors]]
        p_values.append(float(fisher_exact(table, alternative="greater").pvalue))
    q_values = multipletests(p_values, method="fdr_bh")[1]
    return [
        Excess(n, errors, total - n, total_errors - errors, p, float(q))
        for (errors, n), p, q in zip(groups, p_values, q_values, strict=True)
    ]


def _length_buckets(rows: Sequence[Judged]) -> Callable[[Judged], str]:
    counts = sorted(len(r.text.split()) for r in rows)
    edges = sorted({counts[min(len(counts) - 1, math.floor(q * len(counts)))] for q in (0.25, 0.5, 0.75)})

    def bucket(row: Judged) -> str:
        n = len(row.text.split())
        low = 0
        for edge in edges:
            if n <= edge:
                return f"length={low}-{edge} words"
            low = edge + 1
        return f"length>={low} words"

    return bucket


def _members(rows: Sequence[Judged]) -> dict[tuple[str, str], list[int]]:
    """Every candidate slice (kind, key) with the indices of its rows."""
    found: dict[tuple[str, str], list[int]] = defaultdict(list)
    bucket = _length_buckets(rows)
    words: dict[str, list[int]] = defaultdict(list)
    fields: dict[str, set[str]] = defaultdict(set)
    for i, row in enumerate(rows):
        found[("predicted", f"predicted={row.predicted}")].append(i)
        found[("length", bucket(row))].append(i)
        for name, value in row.metadata.items():
            fields[name].add(str(value))
            found[("metadata", f"metadata.{name}={value}")].append(i)
        for word in set(_WORD.findall(row.text.lower())):
            words[word].append(i)
    for kind, key in list(found):
        name = key.split("=", 1)[0].removeprefix("metadata.")
        if kind == "metadata" and len(fields[name]) > MAX_FIELD_VALUES:
            del found[(kind, key)]
    stop = _stop_words()
    common = sorted((w for w in words if w not in stop), key=lambda w: (-len(words[w]), w))[:MAX_TERMS]
    for word in common:
        found[("term", f"term={word}")] = words[word]
    return found


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def error_slices(rows: Sequence[Judged]) -> tuple[list[ErrorSlice], int]:
    """The slices whose error rate is significantly above the rest's, most significant first,
    and how many slices were tested."""
    total, total_errors = len(rows), sum(r.wrong for r in rows)
    if total_errors == 0 or total_errors == total:
        return [], 0
    candidates = [
        (kind, key, members)
        for (kind, key), members in _members(rows).items()
        if MIN_SLICE <= len(members) <= total - MIN_SLICE
    ]
    tests = excess([(sum(rows[i].wrong for i in m), len(m)) for _, _, m in candidates], total_errors, total)
    found = [ErrorSlice(key, kind, test) for (kind, key, _), test in zip(candidates, tests, strict=True)]
    significant = [s for s in found if s.test.significant]
    significant.sort(key=lambda s: (s.test.q_value, -s.test.error_rate, s.key))
    return significant, len(candidates)
