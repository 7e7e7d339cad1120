"""Which answers to ask users about: uncertainty sampling with a diversity rule. Pure.

The rule, in order:

1. **Exclude** every candidate that already has feedback (``labelled`` ids), and every
   candidate without probabilities.
2. **Score** each candidate by the strategy:
   * ``margin`` (default): top-1 minus top-2 probability; the *smallest* margin comes first
     (the answer the model could most easily have got the other way);
   * ``entropy``: Shannon entropy of the probabilities divided by ``log(number of labels)``
     (1 = uniform); the *highest* comes first.
   Ties are broken by the candidate id, ascending, so the choice never depends on the order
   the candidates arrived in.
3. **Diversify** greedily, in score order: a candidate is skipped when its text is too close
   to one already picked, i.e. the cosine similarity of their word-count vectors (words of
   the case-folded text, ``\\w+``) is at least ``max_similarity`` (default 0.7; "great phone"
   and "Great phone, love it" are 0.71 apart). Asking twice about one sentence wastes a label.
4. Stop at ``k`` picks (fewer when the candidates run out).

Each pick carries its score, both uncertainty measures, its rank among the scored candidates
and a one-line reason.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Strategy = Literal["margin", "entropy"]
STRATEGIES: tuple[Strategy, ...] = ("margin", "entropy")
DEFAULT_MAX_SIMILARITY = 0.7
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Candidate:
    id: str
    text: str
    probabilities: Mapping[str, float]


@dataclass(frozen=True)
class Pick:
    id: str
    text: str
    label: str  # the top-1 label (what was answered)
    probabilities: Mapping[str, float]
    score: float  # the strategy's score: the margin, or the normalised entropy
    margin: float
    entropy: float
    rank: int  # 0-based position among the scored candidates, before diversity skips
    reason: str


def margin_of(probabilities: Mapping[str, float]) -> float:
    """Top-1 minus top-2 probability (the top-1 probability itself with a single label)."""
    top = sorted(probabilities.values(), reverse=True)
    return top[0] - (top[1] if len(top) > 1 else 0.0)


def entropy_of(probabilities: Mapping[str, float]) -> float:
    """Shannon entropy divided by log(number of labels): 0 = certain, 1 = uniform."""
    n = len(probabilities)
    if n < 2:
        return 0.0
    h = -sum(p * math.log(p) for p in probabilities.values() if p > 0)
    return h / math.log(n)


def word_vector(text: str) -> Counter[str]:
    return Counter(_WORD.findall(text.casefold()))


def cosine(a: Counter[str], b: Counter[str]) -> float:
    if not a or not b:
        return 0.0
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    dot = sum(n * large[w] for w, n in small.items())
    return dot / math.sqrt(sum(n * n for n in a.values()) * sum(n * n for n in b.values()))


def _reason(strategy: Strategy, probabilities: Mapping[str, float], margin: float, entropy: float) -> str:
    ranked = sorted(probabilities.items(), key=lambda kv: (-kv[1], kv[0]))
    if strategy == "margin":
        if len(ranked) < 2:
            return f"margin {margin:.3f}: one label only"
        (a, pa), (b, pb) = ranked[0], ranked[1]
        return f"margin {margin:.3f} between {a!r} ({pa:.3f}) and {b!r} ({pb:.3f})"
    return (
        f"entropy {entropy:.3f} of the maximum 1 over {len(ranked)} labels; top {ranked[0][0]!r} ({ranked[0][1]:.3f})"
    )


def select_for_feedback(
    candidates: Sequence[Candidate],
    k: int,
    *,
    strategy: Strategy = "margin",
    labelled: Collection[str] = (),
    max_similarity: float = DEFAULT_MAX_SIMILARITY,
) -> list[Pick]:
    """The ``k`` candidates most worth asking users about, by the rule in the module docstring."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    done = set(labelled)
    scored: list[tuple[float, str, Candidate, float, float]] = []
    for c in candidates:
        if c.id in done or not c.probabilities:
            continue
        m, h = margin_of(c.probabilities), entropy_of(c.probabilities)
        scored.append((m if strategy == "margin" else -h, c.id, c, m, h))
    scored.sort(key=lambda s: (s[0], s[1]))
    picks: list[Pick] = []
    vectors: list[Counter[str]] = []
    for rank, (_, _, c, m, h) in enumerate(scored):
        if len(picks) >= k:
            break
        vector = word_vector(c.text)
        if any(cosine(vector, other) >= max_similarity for other in vectors):
            continue
        vectors.append(vector)
        label = min(c.probabilities, key=lambda lab: (-c.probabilities[lab], lab))
        picks.append(
            Pick(
                id=c.id,
                text=c.text,
                label=label,
                probabilities=c.probabilities,
                score=m if strategy == "margin" else h,
                margin=m,
                entropy=h,
                rank=rank,
                reason=_reason(strategy, c.probabilities, m, h),
            )
        )
    return picks
