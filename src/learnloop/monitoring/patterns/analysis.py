"""Error patterns of a set of judged answers: the clusters of the corrected texts and the
slices with an excess of errors. Pure logic, no I/O.

A cluster becomes a pattern with its size (corrected answers in it), its distinctive terms,
its most frequent ``predicted -> corrected`` pairs and a few examples (the texts nearest its
centre). Every judged answer, right or wrong, is then placed in the cluster whose centre is
nearest (its *region*), and each region's error rate is tested against the rest's
(``slices.excess``: Fisher's exact test, Benjamini-Hochberg over the clusters): a cluster of
corrections can simply be where most traffic is, and the test says whether errors concentrate
there.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from threadpoolctl import threadpool_limits

from learnloop.monitoring.patterns.clusters import Clustering, cluster_texts
from learnloop.monitoring.patterns.judged import Judged
from learnloop.monitoring.patterns.slices import ErrorSlice, Excess, error_slices, excess

EXAMPLES = 3
PAIRS = 3
# Says how far an analysis got: ``progress(fraction done, what it does now)``.
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Example:
    prediction_id: str
    text: str
    pair: str


@dataclass(frozen=True)
class ErrorPattern:
    terms: list[str]
    size: int  # corrected answers in the cluster
    pairs: list[tuple[str, int]]  # the most frequent "predicted -> corrected", with counts
    examples: list[Example]
    region: Excess  # every judged answer nearest this cluster: its errors against the rest

    @property
    def title(self) -> str:
        return ", ".join(self.terms[:4]) or "(no distinctive words)"


@dataclass(frozen=True)
class Analysis:
    judged: int
    disagreements: int
    patterns: list[ErrorPattern]  # largest first
    slices: list[ErrorSlice]  # significant only, most significant first
    slices_tested: int
    k: int | None = None
    silhouette: float | None = None
    silhouettes: dict[int, float] = field(default_factory=dict)  # every k tried
    seconds: float = 0.0
    note: str = ""


def quiet(fraction: float, message: str) -> None:
    """The default ``Progress``: say nothing."""


def analyse(rows: Sequence[Judged], *, seed: int = 0, progress: Progress = quiet) -> Analysis:
    """Cluster the disagreements among ``rows`` and find the slices with excess errors."""
    started = time.perf_counter()
    wrong = [r for r in rows if r.wrong]
    progress(0.05, f"clustering {len(wrong)} corrected texts")
    # One thread: the analysis is background work beside a server, and on a busy machine
    # OpenMP's and BLAS's threads waiting on each other cost several times the work itself.
    with threadpool_limits(limits=1):
        clustering = cluster_texts([r.text for r in wrong], seed=seed)
        patterns: list[ErrorPattern] = []
        note = ""
        if clustering is None:
            note = f"{len(wrong)} corrected texts: too few (or too few shared words) to cluster"
        else:
            progress(0.6, f"testing {clustering.k} clusters against the rest")
            patterns = _patterns(rows, wrong, clustering)
    progress(0.75, "testing slices")
    slices, tested = error_slices(rows)
    progress(1.0, "done")
    return Analysis(
        judged=len(rows),
        disagreements=len(wrong),
        patterns=patterns,
        slices=slices,
        slices_tested=tested,
        k=None if clustering is None else clustering.k,
        silhouette=None if clustering is None else clustering.silhouette,
        silhouettes={} if clustering is None else clustering.tried,
        seconds=time.perf_counter() - started,
        note=note,
    )


def _patterns(rows: Sequence[Judged], wrong: list[Judged], clustering: Clustering) -> list[ErrorPattern]:
    right = [r for r in rows if not r.wrong]
    regions = Counter(clustering.assignments)
    right_regions = Counter(clustering.assign([r.text for r in right]))
    groups = [(regions[c], regions[c] + right_regions[c]) for c in range(clustering.k)]
    tests = excess(groups, len(wrong), len(rows))
    patterns = []
    for c in range(clustering.k):
        members = clustering.typical[c]
        if not members:  # an empty cluster (duplicate texts)
            continue
        pairs = Counter(wrong[i].pair for i in members).most_common(PAIRS)
        examples = [Example(wrong[i].prediction_id, wrong[i].text, wrong[i].pair) for i in members[:EXAMPLES]]
        patterns.append(ErrorPattern(clustering.terms[c], len(members), pairs, examples, tests[c]))
    patterns.sort(key=lambda p: (-p.size, p.title))
    return patterns
