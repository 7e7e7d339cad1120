"""Curation: feedback rows -> labelled examples -> snapshots (pure logic)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback_events import feedback_event
from learnloop.curation import normalize_text
from learnloop.domain import FeedbackEvent
from learnloop.policy import Policy
from learnloop.tasks.classification import LabelledExample, build_snapshot, derive_examples

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BINARY = ("neg", "pos")
MULTI = ("billing", "bug", "praise")
_ids = count()


def row(
    kind: str,
    *,
    at: float,
    prediction_id: str | None = "p1",
    prediction_text: str | None = "the app crashes on start",
    predicted_label: str | None = "pos",
    label: str | None = None,
    thumbs: str | None = None,
    rating: int | None = None,
    text: str | None = None,
) -> FeedbackEvent:
    """A feedback event as ``feedback_with_predictions`` returns it."""
    return feedback_event(
        {
            "id": f"f{next(_ids):06d}",
            "kind": kind,
            "label": label,
            "thumbs": thumbs,
            "rating": rating,
            "text": text,
            "subject": None,
            "created_at": T0 + timedelta(seconds=at),
            "prediction_id": None if kind == "example" else prediction_id,
            "prediction_text": None if kind == "example" else prediction_text,
            "predicted_label": None if kind == "example" else predicted_label,
            "prediction_version": None if kind == "example" else 1,
        }
    )


def labels_of(rows: list[FeedbackEvent], labels: tuple[str, ...] = BINARY) -> list[tuple[str, str]]:
    examples, _ = derive_examples(rows, labels)
    return [(ex.text, ex.label) for ex in examples]


# -- derive_examples -------------------------------------------------------------------------


def test_thumbs_up_confirms_and_thumbs_down_flips_a_binary_prediction() -> None:
    up = row("thumbs", at=1, prediction_id="a", prediction_text="great", predicted_label="pos", thumbs="up")
    down = row("thumbs", at=2, prediction_id="b", prediction_text="awful", predicted_label="pos", thumbs="down")
    assert labels_of([up, down]) == [("great", "pos"), ("awful", "neg")]


def test_thumbs_down_on_multiclass_is_a_negative_and_not_trained_on() -> None:
    down = row("thumbs", at=1, predicted_label="bug", thumbs="down")
    examples, counts = derive_examples([down], MULTI)
    assert examples == []
    assert counts["negative"] == 1
    up = row("thumbs", at=2, prediction_id="p2", prediction_text="love it", predicted_label="praise", thumbs="up")
    assert labels_of([down, up], MULTI) == [("love it", "praise")]


def test_ratings_high_confirm_low_flip_and_three_is_neutral() -> None:
    rows = [
        row("rating", at=i, prediction_id=f"r{r}", prediction_text=f"text {r}", predicted_label="pos", rating=r)
        for i, r in enumerate([1, 2, 3, 4, 5])
    ]
    examples, counts = derive_examples(rows, BINARY)
    assert [(ex.text, ex.label) for ex in examples] == [
        ("text 1", "neg"),
        ("text 2", "neg"),
        ("text 4", "pos"),
        ("text 5", "pos"),
    ]
    assert counts["neutral"] == 1


def test_explicit_label_beats_thumbs_on_the_same_prediction_in_either_order() -> None:
    label_first = [row("label", at=1, label="neg"), row("thumbs", at=2, thumbs="up")]
    thumbs_first = [row("thumbs", at=1, thumbs="up"), row("label", at=2, label="neg")]
    for rows in (label_first, thumbs_first):
        examples, counts = derive_examples(rows, BINARY)
        assert [(ex.label, ex.source) for ex in examples] == [("neg", "feedback:label")]
        assert counts["superseded"] == 1


def test_latest_event_of_the_same_kind_wins() -> None:
    rows = [row("label", at=1, label="neg"), row("label", at=2, label="pos")]
    assert labels_of(rows) == [("the app crashes on start", "pos")]


def test_feedback_whose_prediction_is_not_logged_yet_is_pending() -> None:
    pending = row("label", at=1, prediction_id="late", prediction_text=None, predicted_label=None, label="neg")
    example = row("example", at=2, text="Stand-alone example", label="pos")
    examples, counts = derive_examples([pending, example], BINARY)
    assert [(ex.text, ex.label) for ex in examples] == [("Stand-alone example", "pos")]
    assert counts["pending_prediction"] == 1
    assert counts["examples"] == 1


def test_same_text_labelled_differently_keeps_the_latest_label() -> None:
    rows = [
        row("example", at=1, text="It  WORKS", label="pos"),
        row("label", at=2, prediction_id="x", prediction_text="it works", label="neg"),
    ]
    examples, counts = derive_examples(rows, BINARY)
    assert [(ex.text, ex.label) for ex in examples] == [("it works", "neg")]
    assert counts["same_text_relabelled"] == 1


def test_examples_come_out_oldest_first_whatever_the_input_order() -> None:
    rows = [
        row("example", at=3, text="c", label="pos"),
        row("example", at=1, text="a", label="neg"),
        row("example", at=2, text="b", label="pos"),
    ]
    assert [text for text, _ in labels_of(rows)] == ["a", "b", "c"]


def test_derive_examples_is_deterministic() -> None:
    rows = [
        row("thumbs", at=1, thumbs="down"),
        row("example", at=2, text="fine", label="pos"),
        row("rating", at=3, prediction_id="p9", prediction_text="meh", rating=3),
    ]
    assert derive_examples(rows, BINARY) == derive_examples(list(rows), BINARY)


# -- build_snapshot --------------------------------------------------------------------------


_WORDS = [
    "battery",
    "screen",
    "camera",
    "speaker",
    "charger",
    "case",
    "button",
    "signal",
    "headset",
    "volume",
    "price",
    "delivery",
    "sound",
    "picture",
    "plot",
    "actor",
    "ending",
    "music",
    "dialogue",
    "service",
    "waiter",
    "table",
    "dessert",
    "menu",
    "coffee",
    "kitchen",
]


def distinct_text(i: int) -> str:
    """Texts far apart (no two are near duplicates), unlike "text 1" and "text 12"."""
    rng = random.Random(i)
    return " ".join(rng.sample(_WORDS, 6))


def feedback_examples(n: int, start: float = 0.0) -> list[LabelledExample]:
    return [
        LabelledExample(
            distinct_text(i),
            "pos" if i % 2 else "neg",
            "feedback:label",
            T0 + timedelta(seconds=start + i),
            f"f{i}",
        )
        for i in range(n)
    ]


def test_recent_validation_chains_forward_over_the_newest_feedback_and_all_of_it_is_trained_on() -> None:
    feedback = feedback_examples(40)
    snap = build_snapshot(
        bootstrap=[("boot a", "pos"), ("boot b", "neg")],
        feedback=feedback,
        golden_texts=[],
        champion_cutoff=None,
        cutoff=T0 + timedelta(hours=1),
        policy=Policy.of(recent_blocks=4),
    )
    # The final candidate trains on everything; three folds judge blocks 2..4 of the feedback.
    assert snap.counts["train"] == 42
    assert len(snap.folds) == 3
    assert snap.recent == feedback[10:]
    for fold in snap.folds:
        # each fold fits on everything before its block, and on nothing of the block or after it
        assert fold.train == list(range(min(fold.evaluate)))
    assert snap.counts["recent_validation"] == 30


def test_recent_validation_only_judges_feedback_the_champion_never_saw() -> None:
    feedback = feedback_examples(50)
    snap = build_snapshot(
        bootstrap=[],
        feedback=feedback,
        golden_texts=[],
        champion_cutoff=T0 + timedelta(seconds=29.5),  # the champion trained on feedback 0..29
        cutoff=T0 + timedelta(hours=1),
        policy=Policy.of(recent_blocks=2),
    )
    assert snap.counts["unseen_by_champion"] == 20
    assert snap.recent == feedback[40:]
    assert snap.folds[0].train == list(range(40))


def test_a_fold_never_fits_on_a_text_of_the_block_it_is_judged_on() -> None:
    feedback = feedback_examples(20)
    repeated = LabelledExample(feedback[15].text.upper(), "pos", "feedback:label", T0, "early-copy")
    snap = build_snapshot(
        bootstrap=[(f"  {feedback[12].text} ", "neg"), ("kept", "pos")],
        feedback=[repeated, *feedback],
        golden_texts=[],
        champion_cutoff=T0 + timedelta(seconds=0.5),
        cutoff=None,
        policy=Policy.of(recent_blocks=2),
    )
    (fold,) = snap.folds
    judged = {normalize_text(snap.train[i].text) for i in fold.evaluate}
    fitted = {normalize_text(snap.train[i].text) for i in fold.train}
    assert normalize_text(feedback[15].text) in judged and normalize_text(feedback[12].text) in judged
    assert not judged & fitted
    assert "kept" in fitted


def test_golden_texts_never_reach_train_even_with_other_spacing_or_case() -> None:
    feedback = [
        LabelledExample("Golden   SENTENCE", "pos", "feedback:label", T0, "g"),
        *feedback_examples(9, start=1),
    ]
    snap = build_snapshot(
        bootstrap=[("golden sentence", "pos"), ("kept", "neg")],
        feedback=feedback,
        golden_texts=["Golden sentence"],
        champion_cutoff=None,
        cutoff=None,
        policy=Policy(),
    )
    train_texts = {normalize_text(ex.text) for ex in snap.train}
    assert "golden sentence" not in train_texts
    assert "kept" in train_texts
    assert snap.counts["dropped_overlap_with_golden"] == 2


def test_snapshot_hash_names_the_content() -> None:
    kwargs: dict[str, Any] = {
        "bootstrap": [("a", "pos"), ("b", "neg")],
        "golden_texts": [],
        "champion_cutoff": None,
        "cutoff": None,
        "policy": Policy(),
    }
    feedback = feedback_examples(10)
    one = build_snapshot(feedback=feedback, **kwargs)
    assert build_snapshot(feedback=list(feedback), **kwargs).hash == one.hash
    relabelled = [
        *feedback[:3],
        LabelledExample(
            feedback[3].text,
            "pos" if feedback[3].label == "neg" else "neg",
            feedback[3].source,
            feedback[3].created_at,
            feedback[3].feedback_id,
        ),
        *feedback[4:],
    ]
    assert build_snapshot(feedback=relabelled, **kwargs).hash != one.hash


@st.composite
def snapshot_inputs(draw: st.DrawFn) -> tuple[list[LabelledExample], list[str], datetime | None, Policy]:
    offsets = sorted(draw(st.lists(st.integers(min_value=0, max_value=10_000), max_size=60)))
    words = st.sampled_from(["good", "bad", "ok", "Good", "BAD  ", "fine", "awful", "great"])
    feedback = [
        LabelledExample(
            f"{draw(words)} {draw(st.integers(0, 15))}",
            draw(st.sampled_from(BINARY)),
            "feedback:label",
            T0 + timedelta(seconds=offset),
            f"f{i}",
        )
        for i, offset in enumerate(offsets)
    ]
    golden = [f"{w} {n}" for w, n in draw(st.lists(st.tuples(words, st.integers(0, 15)), max_size=10))]
    cutoff_seconds = draw(st.none() | st.integers(min_value=-1, max_value=10_001))
    cutoff = None if cutoff_seconds is None else T0 + timedelta(seconds=cutoff_seconds)
    policy = Policy.of(
        recent_blocks=draw(st.integers(min_value=2, max_value=6)),
        recent_holdout_max=draw(st.integers(min_value=1, max_value=40)),
    )
    return feedback, golden, cutoff, policy


@settings(max_examples=300, deadline=None)
@given(snapshot_inputs())
def test_a_time_split_never_trains_on_the_future(
    inputs: tuple[list[LabelledExample], list[str], datetime | None, Policy],
) -> None:
    feedback, golden, champion_cutoff, policy = inputs
    snap = build_snapshot(
        bootstrap=[("bootstrap good", "pos"), ("bootstrap bad", "neg"), ("good 1", "pos")],
        feedback=feedback,
        golden_texts=golden,
        champion_cutoff=champion_cutoff,
        cutoff=None,
        policy=policy,
    )
    recent_ids = {ex.feedback_id for ex in snap.recent}
    # What is judged is feedback the champion never saw, at most recent_holdout_max events ...
    assert recent_ids <= {ex.feedback_id for ex in feedback}
    assert all(champion_cutoff is None or (ex.created_at and ex.created_at > champion_cutoff) for ex in snap.recent)
    assert len(snap.recent) <= policy.gate.recent_holdout_max
    for fold in snap.folds:
        judged = [snap.train[i] for i in fold.evaluate]
        fitted = [snap.train[i] for i in fold.train]
        # ... and no fold fits on anything newer than what it is judged on, nor on its texts.
        oldest_judged = min(ex.created_at for ex in judged if ex.created_at)
        assert all(ex.created_at is None or ex.created_at <= oldest_judged for ex in fitted)
        assert not {normalize_text(ex.text) for ex in judged} & {normalize_text(ex.text) for ex in fitted}
    # no golden text leaks into train
    assert not {normalize_text(t) for t in golden} & {normalize_text(ex.text) for ex in snap.train}
    assert snap.counts["train"] == len(snap.train)


# Jaccard of character 5-grams 0.89: a near copy, not an exact one (punctuation aside).
NEAR = (
    "The battery lasts all day and the screen is sharp and bright.",
    "The battery lasts all day, and the screen is sharp and bright, really!",
)


def test_near_copies_of_golden_texts_never_reach_train_and_only_the_latest_near_copy_of_feedback_stays() -> None:
    early = LabelledExample("I loved the dessert menu and the coffee here.", "pos", "feedback:label", T0, "e1")
    late = LabelledExample(
        "I loved the dessert menu and the coffee here, truly.", "neg", "feedback:label", T0 + timedelta(1), "e2"
    )
    snap = build_snapshot(
        bootstrap=[(NEAR[1], "pos"), ("kept", "neg")],
        feedback=[late, early, *feedback_examples(6, start=10)],
        golden_texts=[NEAR[0]],
        champion_cutoff=None,
        cutoff=None,
        policy=Policy(),
    )
    texts = [ex.text for ex in snap.train]
    assert NEAR[1] not in texts and "kept" in texts
    assert late in snap.train and early not in snap.train  # the latest of a near-duplicate pair
    assert snap.counts["dropped_overlap_with_golden"] == 1
    assert snap.counts["dropped_feedback_duplicates"] == {"near_duplicate": 1, "label_differs": 1}
    exact = build_snapshot(
        bootstrap=[(NEAR[1], "pos")],
        feedback=[],
        golden_texts=[NEAR[0]],
        champion_cutoff=None,
        cutoff=None,
        policy=Policy.of(dedup_threshold=1.0),
    )
    assert [ex.text for ex in exact.train] == [NEAR[1]]  # threshold 1: exact copies only


def test_a_fold_never_fits_on_a_near_copy_of_its_block() -> None:
    feedback = feedback_examples(20, start=1)
    feedback[15] = LabelledExample(NEAR[0], "pos", "feedback:label", feedback[15].created_at, "judged")
    snap = build_snapshot(
        bootstrap=[(NEAR[1], "pos"), ("kept", "neg")],  # an old near copy of a text the fold judges
        feedback=feedback,
        golden_texts=[],
        champion_cutoff=T0 + timedelta(seconds=0.5),
        cutoff=None,
        policy=Policy.of(recent_blocks=2),
    )
    (fold,) = snap.folds
    position = {ex.text: i for i, ex in enumerate(snap.train)}
    assert position[NEAR[0]] in fold.evaluate
    assert position[NEAR[1]] not in fold.train and position["kept"] in fold.train


def test_no_subject_contributes_more_than_its_share() -> None:
    def by(subject: str, n: int, start: int) -> list[LabelledExample]:
        return [
            LabelledExample(
                distinct_text(start + i),
                "pos",
                "feedback:label",
                T0 + timedelta(seconds=start + i),
                f"{subject}{i}",
                None,
                subject,
            )
            for i in range(n)
        ]

    spammer = by("spam", 40, 0)
    honest = by("a", 5, 100) + by("b", 5, 200)
    snap = build_snapshot(
        bootstrap=[(distinct_text(1000 + i), "neg") for i in range(10)],
        feedback=[*spammer, *honest],
        golden_texts=[],
        champion_cutoff=None,
        cutoff=None,
        policy=Policy.of(max_subject_share=0.2),
    )
    kept = [ex for ex in snap.train if ex.subject == "spam"]
    assert 0 < len(kept) <= 0.2 * len(snap.train)
    assert kept == spammer[-len(kept) :]  # their latest
    assert all(ex in snap.train for ex in honest)
    assert snap.counts["dropped_subject_cap"] == {"subject_cap": 40 - len(kept), "capped_subjects": 1}


def test_recency_halves_older_feedback_weights_and_keeps_the_bootstrap_as_a_replay_buffer() -> None:
    feedback = feedback_examples(9)
    kwargs: dict[str, Any] = {
        "bootstrap": [(distinct_text(100 + i), "neg") for i in range(3)],
        "feedback": feedback,
        "golden_texts": [],
        "champion_cutoff": None,
        "cutoff": None,
    }
    off = build_snapshot(policy=Policy(), **kwargs)
    on = build_snapshot(policy=Policy.of(recency_half_life=4), **kwargs)
    weights = {ex.feedback_id: ex.weight for ex in on.train if ex.source != "bootstrap"}
    assert weights["f8"] == 1.0 and weights["f4"] == pytest.approx(0.5) and weights["f0"] == pytest.approx(0.25)
    assert all(ex.weight == 1.0 for ex in on.train if ex.source == "bootstrap")
    assert all(ex.weight == 1.0 for ex in off.train) and on.hash != off.hash
