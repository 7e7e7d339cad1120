"""Conflicting labels: trust-weighted majority, Dawid-Skene against simulated annotators, subject caps."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from learnloop.curation.conflicts import Vote, dawid_skene, majority_vote, subject_caps


def test_majority_vote_counts_trust_and_says_why() -> None:
    votes = [
        Vote("p1", "ann", "pos"),
        Vote("p2", "ann", "pos"),
        Vote("p2", "bob", "pos"),
        Vote("p3", "ann", "pos"),
        Vote("p3", "bob", "neg"),
        Vote("p3", "cy", "neg"),
    ]
    out = majority_vote(votes)
    assert [(r.label, r.reason, r.votes) for r in out.values()] == [
        ("pos", "single_vote", 1),
        ("pos", "unanimous", 2),
        ("neg", "majority", 3),
    ]
    assert out["p3"].confidence == pytest.approx(2 / 3)
    trusted = majority_vote(votes, trust={"ann": 3.0})
    assert trusted["p3"].label == "pos"
    assert trusted["p3"].confidence == pytest.approx(0.6)


def test_a_tie_goes_to_the_label_voted_last_or_to_nobody() -> None:
    votes = [Vote("p", "ann", "neg"), Vote("p", "bob", "pos"), Vote("p", "cy", "neg"), Vote("p", "dee", "pos")]
    assert majority_vote(votes)["p"].label == "pos"
    assert majority_vote(votes)["p"].reason == "tie_latest"
    assert majority_vote(votes, tie="abstain")["p"].label is None
    assert majority_vote(votes, tie="abstain")["p"].reason == "tie_unresolved"


def _simulate(
    seed: int, labels: list[str], accuracy: dict[str, float], items: int, per_item: int
) -> tuple[dict[str, str], list[Vote]]:
    """Each item is labelled by ``per_item`` random subjects; a subject with accuracy 0 is always wrong."""
    rng = random.Random(seed)
    truth = {f"item{i}": rng.choice(labels) for i in range(items)}
    votes = []
    for item, true in truth.items():
        for subject in rng.sample(sorted(accuracy), per_item):
            right = rng.random() < accuracy[subject]
            votes.append(Vote(item, subject, true if right else rng.choice([lab for lab in labels if lab != true])))
    return truth, votes


def _accuracy(truth: dict[str, str], labels: dict[str, str | None]) -> float:
    return sum(labels[item] == true for item, true in truth.items()) / len(truth)


@pytest.mark.parametrize("labels", [["neg", "pos"], ["billing", "bug", "praise", "other"]])
def test_dawid_skene_beats_majority_and_distrusts_adversaries(labels: list[str]) -> None:
    accuracy = {f"honest{j}": 0.85 for j in range(5)} | {f"sloppy{j}": 0.6 for j in range(3)}
    accuracy |= {f"adversary{j}": 0.0 for j in range(4)}
    truth, votes = _simulate(0, labels, accuracy, items=400, per_item=5)
    majority = majority_vote(votes)
    result = dawid_skene(votes, label_set=labels)
    mv = _accuracy(truth, {i: r.label for i, r in majority.items()})
    ds = _accuracy(truth, {i: r.label for i, r in result.resolutions.items()})
    # measured (seed 0): binary 0.61 -> 0.99, four labels 0.72 -> 0.96
    assert ds >= mv + 0.15
    assert ds >= 0.9
    assert result.converged
    honest = [result.trust[s] for s in accuracy if s.startswith("honest")]
    adversaries = [result.trust[s] for s in accuracy if s.startswith("adversary")]
    assert max(adversaries) < 0.15 < 0.7 < min(honest)
    for matrix in result.confusion.values():
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    assert all(abs(sum(p.values()) - 1) < 1e-9 for p in result.posteriors.values())


def test_dawid_skene_trust_can_weight_a_majority_vote() -> None:
    labels = ["neg", "pos"]
    accuracy = {"a": 0.9, "b": 0.9, "c": 0.9, "x": 0.0, "y": 0.0}
    truth, votes = _simulate(1, labels, accuracy, items=200, per_item=3)
    trust = dawid_skene(votes, label_set=labels).trust
    weighted = majority_vote(votes, trust=trust)
    assert _accuracy(truth, {i: r.label for i, r in weighted.items()}) > _accuracy(
        truth, {i: r.label for i, r in majority_vote(votes).items()}
    )


def test_dawid_skene_refuses_labels_outside_the_label_set() -> None:
    with pytest.raises(ValueError, match="outside the label set"):
        dawid_skene([Vote("i", "s", "maybe")], label_set=["neg", "pos"])


def test_a_count_cap_keeps_each_subjects_latest_examples() -> None:
    result = subject_caps({"flood": list(range(10)), "quiet": [1, 2]}, 3)
    assert result.kept == {"flood": [7, 8, 9], "quiet": [1, 2]}
    assert result.dropped == {"flood": 7}
    assert result.counts == {"subject_cap": 7, "capped_subjects": 1}


def test_a_share_cap_holds_against_the_whole_snapshot() -> None:
    by_subject = {"flood": list(range(500)), "a": list(range(20)), "b": list(range(5))}
    result = subject_caps(by_subject, 0.1, others=200)
    total = 200 + sum(len(xs) for xs in result.kept.values())
    assert all(len(xs) <= 0.1 * total for xs in result.kept.values())
    assert result.limit == 25  # 25 <= 0.1 * (200 + 25 + 20 + 5); 26 would not fit
    assert result.dropped == {"flood": 475}


def test_bad_caps_are_refused() -> None:
    with pytest.raises(ValueError):
        subject_caps({"a": [1]}, 1.5)
    with pytest.raises(ValueError):
        subject_caps({"a": [1]}, -1)
    with pytest.raises(TypeError):
        subject_caps({"a": [1]}, True)


@given(
    st.dictionaries(st.text(max_size=3), st.integers(0, 60), max_size=8),
    st.floats(0.01, 0.99),
    st.integers(0, 100),
)
def test_share_caps_always_hold_and_every_example_is_accounted_for(
    sizes: dict[str, int], share: float, others: int
) -> None:
    by_subject = {s: list(range(n)) for s, n in sizes.items()}
    result = subject_caps(by_subject, share, others=others)
    total = others + sum(len(xs) for xs in result.kept.values())
    assert all(len(xs) <= share * total for xs in result.kept.values())
    assert all(len(result.kept[s]) + result.dropped.get(s, 0) == n for s, n in sizes.items())
    # the limit is the largest that holds: one more would break it for some subject that has more
    bigger = result.limit + 1
    if any(n >= bigger for n in sizes.values()):
        assert bigger > share * (others + sum(min(n, bigger) for n in sizes.values()))
