"""Feedback rows -> weighted labelled examples: conflict rule, subject trust, disagreement. Pure.

``policy.conflict_resolution`` picks the rule:

* ``latest``: ``labels.derive_examples`` (one example per prediction and per text, the latest
  wins, weight 1);
* ``dawid_skene``: every feedback event is a *vote* (its label from ``labels.implied_label``)
  by a *voter*: its hashed subject, or ``anonymous`` for events without one. A voter's events on
  one prediction collapse to one vote as in ``derive_examples`` (an explicit label beats thumbs
  or ratings, then the latest wins), and a voter's votes on one *item* to the latest. An item is
  a group of near-identical texts (``dedup.group_ids`` at ``policy.dedup_threshold``), so votes
  on one prediction, on repeats of a text and on near copies meet. Items with votes from two or
  more voters are *contested*; Dawid-Skene EM (``conflicts.dawid_skene``, smoothing 1 plus
  ``HONESTY`` pseudo-counts on the diagonal) runs over them and gives every voter seen there a
  confusion matrix and a **trust** (estimated accuracy). Every item's posterior then combines
  its votes through those matrices (a voter never seen on a contested item gets the prior
  matrix, accuracy 0.8 on two labels) under a uniform label prior. The item's label is the
  most probable label among those voted for (never one nobody gave, even for a voter whose
  matrix says they invert labels; a tie: the label of the latest tied vote) and its example, the latest
  vote for that label, weighs the posterior of the label divided by the posterior one vote of
  an unseen voter gets, capped at 1. So an uncontested vote of a voter nobody contradicted
  weighs 1, as under ``latest``; an item split between equally trusted voters, and any vote of
  a voter who keeps contradicting the consensus, weighs less.

Every step is counted (``ConflictReport.counts``); trust is listed per hashed subject, lowest
first, at most ``TRUST_LISTED``. ``disagreement`` gives, per version that served the answers,
the share of feedback that contradicts the served label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from learnloop.curation.conflicts import Vote, dawid_skene
from learnloop.curation.dedup import group_ids
from learnloop.domain import FeedbackEvent
from learnloop.policy import CurationPolicy
from learnloop.tasks.classification.answers import predicted_label
from learnloop.tasks.classification.labels import (
    LabelledExample,
    derive_examples,
    event_key,
    event_text,
    feedback_example,
    implied_label,
    winning_events,
)
from learnloop.tasks.classification.noise import FitFunction, filter_label_noise

HONESTY = 3.0  # extra diagonal pseudo-counts: an unseen voter is right (1 + 3) / (1 + 3 + 1) = 80% on two labels
LOW_TRUST = 0.5  # voters below this are counted as low-trust
TRUST_LISTED = 50  # at most this many subjects' trust in the counts
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class ConflictReport:
    """The examples (time order, with weights), the trust of each voter seen on a contested
    item, and the counts a snapshot records."""

    examples: list[LabelledExample]
    feedback_counts: dict[str, int]
    counts: dict[str, Any] = field(default_factory=dict)
    trust: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Ballot:
    voter: str
    label: str
    event: FeedbackEvent
    text: str


def resolve_feedback(
    events: Iterable[FeedbackEvent], labels: Sequence[str], *, rule: str, dedup_threshold: float
) -> ConflictReport:
    """Feedback events (oldest first, with their answers) -> examples under ``rule``."""
    rows = list(events)
    if rule == "latest":
        derived, derived_counts = derive_examples(rows, labels)
        return ConflictReport(derived, dict(derived_counts), {"rule": "latest"})
    if rule != "dawid_skene":
        raise ValueError(f"unknown conflict rule {rule!r}")
    ballots, counts = _ballots(rows, labels)
    if not ballots:
        counts["examples"] = 0
        return ConflictReport([], dict(counts), {"rule": "dawid_skene", "votes": 0})
    gids = group_ids([b.text for b in ballots], threshold=dedup_threshold)
    latest: dict[tuple[int, str], _Ballot] = {}  # one vote per voter and item: their latest
    for gid, ballot in zip(gids, ballots, strict=True):
        key = (gid, ballot.voter)
        if key in latest:
            counts["superseded"] += 1
            del latest[key]
        latest[key] = ballot
    by_item: dict[int, list[_Ballot]] = {}
    for (gid, _), ballot in latest.items():
        by_item.setdefault(gid, []).append(ballot)
    contested = {gid for gid, bs in by_item.items() if len(bs) > 1}
    votes = [Vote(str(gid), b.voter, b.label) for gid in contested for b in by_item[gid]]
    label_list = list(labels)
    k = len(label_list)
    prior_matrix = np.full((k, k), 1.0) + HONESTY * np.eye(k)
    prior_matrix /= prior_matrix.sum(axis=1, keepdims=True)
    confusion: dict[str, Any] = {}
    trust: dict[str, float] = {}
    if votes:
        ds = dawid_skene(votes, label_set=label_list, honesty=HONESTY)
        confusion, trust = ds.confusion, ds.trust
    baseline = float(prior_matrix[0, 0])  # the posterior of one unseen voter's vote, uniform prior
    column = {label: j for j, label in enumerate(label_list)}
    examples: list[LabelledExample] = []
    overturned = 0
    for gid, ballots_here in by_item.items():
        log_post = np.zeros(k)
        for b in ballots_here:
            log_post += np.log(confusion.get(b.voter, prior_matrix)[:, column[b.label]])
        post = np.exp(log_post - log_post.max())
        post /= post.sum()
        top = max(float(post[column[b.label]]) for b in ballots_here)  # never a label nobody gave
        tied = {b.label for b in ballots_here if post[column[b.label]] >= top - 1e-9}
        ordered = sorted(ballots_here, key=lambda b: (b.event.created_at, b.event.id))
        label = next(b.label for b in reversed(ordered) if b.label in tied)
        winner = next(b for b in reversed(ordered) if b.label == label)
        if gid in contested and label != ordered[-1].label:
            overturned += 1
        weight = min(1.0, top / baseline)
        examples.append(feedback_example(winner.event, label, round(weight, 6)))
    examples.sort(key=lambda ex: (ex.created_at is None, ex.created_at, ex.feedback_id))
    counts["examples"] = len(examples)
    subjects = {s: t for s, t in trust.items() if s != ANONYMOUS}
    listed = sorted(subjects.items(), key=lambda st: (st[1], st[0]))[:TRUST_LISTED]
    report: dict[str, Any] = {
        "rule": "dawid_skene",
        "votes": len(latest),
        "items": len(by_item),
        "contested_items": len(contested),
        "overturned_latest": overturned,
        "down_weighted": sum(1 for ex in examples if ex.weight < 1.0),
        "mean_weight": round(sum(ex.weight for ex in examples) / len(examples), 4),
        "subjects_with_trust": len(subjects),
        "low_trust_subjects": sum(1 for t in subjects.values() if t < LOW_TRUST),
        "anonymous_trust": round(trust[ANONYMOUS], 4) if ANONYMOUS in trust else None,
        "trust": {s: round(t, 4) for s, t in listed},
        "trust_unlisted": max(0, len(subjects) - TRUST_LISTED),
    }
    return ConflictReport(examples, dict(counts), report, trust)


def _ballots(events: Sequence[FeedbackEvent], labels: Sequence[str]) -> tuple[list[_Ballot], Counter[str]]:
    """One ballot per voter and prediction (or standalone text), in time order."""

    def voter(event: FeedbackEvent) -> str:
        return event.feedback.subject or ANONYMOUS

    def key(event: FeedbackEvent) -> tuple[str, str] | None:
        about = event_key(event)
        return None if about is None else (about, voter(event))

    winners, counts = winning_events(events, key)
    ballots = []
    for event in winners:
        label, outcome = implied_label(event, labels)
        if label is None:
            counts[outcome] += 1
            continue
        ballots.append(_Ballot(voter(event), label, event, event_text(event)))
    return ballots, counts


def scale_weights(examples: Sequence[LabelledExample], factors: Mapping[int, float]) -> list[LabelledExample]:
    """``examples`` with the weight of example ``i`` multiplied by ``factors[i]`` (others unchanged)."""
    return [replace(ex, weight=ex.weight * factors[i]) if i in factors else ex for i, ex in enumerate(examples)]


def disagreement(events: Iterable[FeedbackEvent], labels: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per version that served the answer: feedback events that judged it, how many contradict
    the served label (a different label, thumbs down, a rating of 1-2) and their share."""
    judged: Counter[str] = Counter()
    against: Counter[str] = Counter()
    for event in events:
        if event.kind == "example" or event.served is None:
            continue
        label, outcome = implied_label(event, labels)
        if outcome not in ("labelled", "negative"):
            continue
        version = str(event.served.version)
        judged[version] += 1
        if outcome == "negative" or label != predicted_label(event):
            against[version] += 1
    return {
        v: {"feedback": judged[v], "contradicting": against[v], "share": round(against[v] / judged[v], 4)}
        for v in sorted(judged, key=lambda v: (len(v), v))
    }


def curate_feedback(
    rows: Sequence[FeedbackEvent],
    labels: Sequence[str],
    policy: CurationPolicy,
    *,
    bootstrap: Sequence[tuple[str, str]],
    fit: FitFunction,
) -> ConflictReport:
    """The snapshot's feedback under the policy: the conflict rule, then the noise filter;
    ``counts`` holds ``conflicts``, ``noise`` and ``disagreement`` for the snapshot's counts."""
    resolved = resolve_feedback(rows, labels, rule=policy.conflict_resolution, dedup_threshold=policy.dedup_threshold)
    examples, noise = filter_label_noise(
        resolved.examples,
        mode=policy.noise_filter,
        bootstrap=bootstrap,
        label_set=labels,
        fit=fit,
        folds=policy.noise_folds,
    )
    counts = {"conflicts": resolved.counts, "noise": noise, "disagreement": disagreement(rows, labels)}
    return ConflictReport(examples, resolved.feedback_counts, counts, resolved.trust)
