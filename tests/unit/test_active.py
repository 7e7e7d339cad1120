"""Which answers to ask users about: uncertainty first, no near-duplicates, nothing labelled twice."""

from __future__ import annotations

import random

import pytest

from learnloop.tasks.classification.active import (
    Candidate,
    cosine,
    entropy_of,
    margin_of,
    select_for_feedback,
    word_vector,
)


def binary(id_: str, text: str, p1: float) -> Candidate:
    return Candidate(id_, text, {"0": round(1 - p1, 6), "1": p1})


CANDIDATES = [
    binary("a", "the battery died after a week", 0.95),
    binary("b", "not sure it was worth the price", 0.55),
    binary("c", "the screen is fine I guess", 0.48),
    binary("d", "worst purchase ever made", 0.02),
    binary("e", "it works, mostly", 0.70),
]


def test_smallest_margins_come_first() -> None:
    picks = select_for_feedback(CANDIDATES, 3)
    assert [p.id for p in picks] == ["c", "b", "e"]  # margins 0.04, 0.10, 0.40
    assert [p.score for p in picks] == sorted(p.score for p in picks)
    assert picks[0].margin == pytest.approx(0.04)
    assert picks[0].label == "0" and picks[0].reason == "margin 0.040 between '0' (0.520) and '1' (0.480)"


def test_entropy_ranks_a_flat_three_way_answer_above_a_close_two_way_one() -> None:
    flat = Candidate("flat", "meh", {"neg": 0.34, "neu": 0.33, "pos": 0.33})
    close = Candidate("close", "hmm ok", {"neg": 0.49, "neu": 0.02, "pos": 0.49})
    sure = Candidate("sure", "love it", {"neg": 0.01, "neu": 0.01, "pos": 0.98})
    by_entropy = select_for_feedback([sure, close, flat], 3, strategy="entropy")
    assert [p.id for p in by_entropy] == ["flat", "close", "sure"]
    assert by_entropy[0].score == pytest.approx(entropy_of(flat.probabilities)) and by_entropy[0].score > 0.99
    # By margin the close two-way call comes first (0.00 against 0.01).
    assert [p.id for p in select_for_feedback([sure, close, flat], 3)] == ["close", "flat", "sure"]


def test_near_duplicates_are_not_both_picked() -> None:
    candidates = [
        binary("x1", "Great phone, love it!", 0.50),
        binary("x2", "great phone love it", 0.51),  # the same words: cosine 1
        binary("x3", "Great phone", 0.52),  # cosine 0.71 with x1
        binary("y", "the case cracked on day two", 0.60),
    ]
    picks = select_for_feedback(candidates, 3)
    assert [p.id for p in picks] == ["x1", "y"]
    assert cosine(word_vector("Great phone, love it!"), word_vector("Great phone")) >= 0.7
    # With diversity off (a similarity no pair reaches) they are all picked.
    assert len(select_for_feedback(candidates, 3, max_similarity=1.01)) == 3


def test_already_labelled_predictions_are_excluded() -> None:
    picks = select_for_feedback(CANDIDATES, 5, labelled={"c", "b"})
    assert [p.id for p in picks] == ["e", "a", "d"]
    assert not select_for_feedback(CANDIDATES, 5, labelled={c.id for c in CANDIDATES})


def test_ties_are_broken_by_id_whatever_the_input_order() -> None:
    texts = ["loud speaker", "bad battery", "nice screen", "slow charger", "cheap case", "good value", "odd buttons"]
    tied = [binary(f"id-{i:02d}", text, 0.6) for i, text in enumerate(texts)]
    expected = [p.id for p in select_for_feedback(tied, 4)]
    assert expected == ["id-00", "id-01", "id-02", "id-03"]
    rng = random.Random(3)
    for _ in range(5):
        shuffled = tied[:]
        rng.shuffle(shuffled)
        assert [p.id for p in select_for_feedback(shuffled, 4)] == expected


def test_the_rule_is_checked_and_edges_are_plain() -> None:
    assert margin_of({"a": 1.0}) == 1.0 and entropy_of({"a": 1.0}) == 0.0
    assert select_for_feedback(CANDIDATES, 0) == []
    assert len(select_for_feedback(CANDIDATES, 50)) == len(CANDIDATES)
    assert select_for_feedback([Candidate("empty", "no answer", {})], 1) == []
    with pytest.raises(ValueError, match="strategy"):
        select_for_feedback(CANDIDATES, 1, strategy="random")  # type: ignore[arg-type]
