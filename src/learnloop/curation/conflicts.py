"""Several labels for one item: resolve them, learn whom to trust, and cap any one subject. Pure, numpy only.

An *item* is whatever the labels are about: one prediction, or a group of near-identical
inputs (``dedup.group_ids``). A *subject* is who gave the label (a hashed user id).

* ``majority_vote``: each vote weighs its subject's trust (1 unless given); the heaviest label
  wins. **Tie rule**: among the tied labels, the one whose latest vote is latest (votes are
  taken to be in time order) wins, or, with ``tie="abstain"``, the item gets no label.
* ``dawid_skene``: Dawid and Skene's EM (1979). Each subject has a confusion matrix (the
  probability they answer l when the truth is k) and the labels have a prior; EM alternates
  the posterior of every item's true label with the matrices, starting from the majority
  vote, with add-``smoothing`` counts on every cell. A subject's **trust** is their estimated
  accuracy (the prior-weighted diagonal of their matrix), so subjects who persistently
  disagree with the consensus get a low trust.
* ``subject_caps``: no subject contributes more than a count, or a fraction of the snapshot,
  keeping each subject's latest examples and counting what it drops.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import numpy as np
import numpy.typing as npt

T = TypeVar("T")
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Vote:
    item: str
    subject: str
    label: str


@dataclass(frozen=True)
class Resolution:
    """The label an item gets (``None``: unresolved), the winning share of the weight (or the
    posterior probability), the number of votes, and why (``single_vote``, ``unanimous``,
    ``majority``, ``tie_latest``, ``tie_unresolved``, ``posterior``)."""

    item: str
    label: str | None
    confidence: float
    votes: int
    reason: str


def majority_vote(
    votes: Sequence[Vote],
    *,
    trust: Mapping[str, float] | None = None,
    default_trust: float = 1.0,
    tie: Literal["latest", "abstain"] = "latest",
) -> dict[str, Resolution]:
    """Trust-weighted majority per item (items in order of first vote); see the module doc for the tie rule."""
    weights: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    last_seen: dict[str, dict[str, int]] = defaultdict(dict)
    count: Counter[str] = Counter()
    for position, vote in enumerate(votes):
        weight = default_trust if trust is None else trust.get(vote.subject, default_trust)
        weights[vote.item][vote.label] += max(weight, 0.0)
        last_seen[vote.item][vote.label] = position
        count[vote.item] += 1
    out: dict[str, Resolution] = {}
    for item, by_label in weights.items():
        total = sum(by_label.values())
        top = max(by_label.values())
        leaders = [label for label, w in by_label.items() if w == top]
        if len(leaders) == 1:
            winner: str | None = leaders[0]
            reason = "single_vote" if count[item] == 1 else "unanimous" if len(by_label) == 1 else "majority"
        elif tie == "latest":
            winner, reason = max(leaders, key=lambda label: last_seen[item][label]), "tie_latest"
        else:
            winner, reason = None, "tie_unresolved"
        share = top / total if total > 0 else 1.0 / len(by_label)
        out[item] = Resolution(item, winner, share, count[item], reason)
    return out


@dataclass(frozen=True)
class DawidSkeneResult:
    """Per item the posterior label and probabilities; per subject the trust (estimated
    accuracy) and confusion matrix (rows: true label, columns: given label, in ``label_set`` order)."""

    resolutions: dict[str, Resolution]
    posteriors: dict[str, dict[str, float]]
    trust: dict[str, float]
    confusion: dict[str, FloatArray]
    prior: dict[str, float]
    iterations: int
    converged: bool


def dawid_skene(
    votes: Sequence[Vote],
    *,
    label_set: Sequence[str],
    max_iter: int = 100,
    tol: float = 1e-6,
    smoothing: float = 1.0,
    honesty: float = 0.0,
) -> DawidSkeneResult:
    """Dawid-Skene EM over the votes; labels outside ``label_set`` raise ``ValueError``.

    ``honesty`` adds that many pseudo-counts to the diagonal of every confusion matrix (a
    prior that a subject nobody contradicted answers truthfully); 0 keeps the uniform prior."""
    labels = list(label_set)
    label_index = {label: k for k, label in enumerate(labels)}
    unknown = {v.label for v in votes} - set(labels)
    if unknown:
        raise ValueError(f"votes carry labels outside the label set: {sorted(unknown)}")
    items = list(dict.fromkeys(v.item for v in votes))
    subjects = list(dict.fromkeys(v.subject for v in votes))
    item_idx = np.array(_indices(votes, items, "item"), dtype=np.int64)
    subj_idx = np.array(_indices(votes, subjects, "subject"), dtype=np.int64)
    given = np.array([label_index[v.label] for v in votes], dtype=np.int64)
    n_items, n_subj, k = len(items), len(subjects), len(labels)

    posterior = np.zeros((n_items, k))  # start from the (soft) majority vote
    np.add.at(posterior, (item_idx, given), 1.0)
    posterior /= np.maximum(posterior.sum(axis=1, keepdims=True), 1e-12)
    converged, iterations = False, 0
    prior = np.full(k, 1.0 / k)
    confusion = np.full((n_subj, k, k), 1.0 / k)
    for step in range(1, max_iter + 1):
        iterations = step
        prior = (posterior.sum(axis=0) + smoothing) / (n_items + k * smoothing)
        counts = np.full((n_subj, k, k), smoothing)  # [subject, given, true]
        counts[:, np.arange(k), np.arange(k)] += honesty
        np.add.at(counts, (subj_idx, given), posterior[item_idx])
        confusion = counts.transpose(0, 2, 1)  # [subject, true, given]
        confusion = confusion / confusion.sum(axis=2, keepdims=True)
        log_post = np.tile(np.log(prior), (n_items, 1))
        np.add.at(log_post, item_idx, np.log(confusion[subj_idx, :, given]))
        log_post -= log_post.max(axis=1, keepdims=True)
        updated = np.exp(log_post)
        updated /= updated.sum(axis=1, keepdims=True)
        change = float(np.abs(updated - posterior).max()) if n_items else 0.0
        posterior = updated
        if change < tol:
            converged = True
            break
    n_votes = Counter(v.item for v in votes)
    resolutions = {
        item: Resolution(
            item, labels[int(np.argmax(posterior[i]))], float(posterior[i].max()), n_votes[item], "posterior"
        )
        for i, item in enumerate(items)
    }
    return DawidSkeneResult(
        resolutions=resolutions,
        posteriors={item: dict(zip(labels, map(float, posterior[i]), strict=True)) for i, item in enumerate(items)},
        trust={s: float(prior @ np.diag(confusion[j])) for j, s in enumerate(subjects)},
        confusion={s: confusion[j] for j, s in enumerate(subjects)},
        prior=dict(zip(labels, map(float, prior), strict=True)),
        iterations=iterations,
        converged=converged,
    )


def _indices(votes: Sequence[Vote], keys: list[str], attr: Literal["item", "subject"]) -> list[int]:
    position = {key: i for i, key in enumerate(keys)}
    return [position[getattr(v, attr)] for v in votes]


@dataclass(frozen=True)
class CapResult(Generic[T]):
    """Each subject's examples after the cap (their latest), how many each lost, and the per-subject limit."""

    kept: dict[str, list[T]]
    dropped: dict[str, int] = field(default_factory=dict)
    limit: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return {"subject_cap": sum(self.dropped.values()), "capped_subjects": len(self.dropped)}


def subject_caps(examples_by_subject: Mapping[str, Sequence[T]], cap: int | float, *, others: int = 0) -> CapResult[T]:
    """Cap every subject's examples (each subject's sequence oldest first; the latest are kept).

    An ``int`` cap is a count per subject. A ``float`` in (0, 1) is a share of the snapshot: the
    largest per-subject count ``c`` such that ``c <= cap * (others + sum(min(n_s, c)))``, where
    ``others`` counts the snapshot's examples that belong to no subject (bootstrap, anonymous).
    With too few examples around, that can be 0: the policy then drops all subject examples.
    """
    sizes = {s: len(xs) for s, xs in examples_by_subject.items()}
    if isinstance(cap, bool) or not isinstance(cap, int | float):
        raise TypeError(f"cap must be an int (count) or a float (share), got {cap!r}")
    if isinstance(cap, int):
        if cap < 0:
            raise ValueError(f"a count cap must be >= 0, got {cap}")
        limit = cap
    else:
        if not 0.0 < cap < 1.0:
            raise ValueError(f"a share cap must lie strictly between 0 and 1, got {cap}")
        limit = _share_limit(sorted(sizes.values()), cap, others)
    kept = {s: list(xs[max(len(xs) - limit, 0) :]) if limit else [] for s, xs in examples_by_subject.items()}
    dropped = {s: sizes[s] - len(kept[s]) for s in sizes if sizes[s] > len(kept[s])}
    return CapResult(kept, dropped, limit)


def _share_limit(sizes: list[int], share: float, others: int) -> int:
    def feasible(c: int) -> bool:
        return c <= share * (others + sum(min(n, c) for n in sizes))

    # share * (others + sum(min(n, c))) - c is concave in c and >= 0 at 0: the feasible c form an interval from 0
    low, high = 0, max(sizes, default=0)
    while low < high:
        mid = (low + high + 1) // 2
        if feasible(mid):
            low = mid
        else:
            high = mid - 1
    return low
