"""The shapes of feedback events and what each task makes of them (pure: no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from learnloop.domain import Feedback, FeedbackEvent, FeedbackKind, Model, Served
from learnloop.errors import NotSupportedError, ValidationError
from learnloop.feedback.intake import feedback_kind, to_row
from learnloop.feedback.items import parse_item
from learnloop.policy import Policy
from learnloop.tasks import get_task
from learnloop.tasks.classification import derive_examples, latest_per_prediction
from learnloop.tasks.generation import GenAnswer, GenerationOutcomes, is_refusal

NOW = datetime(2026, 1, 1, tzinfo=UTC)
P1, P2 = str(uuid.uuid4()), str(uuid.uuid4())


def model(task: str = "generation", policy: Policy | None = None) -> Model:
    labels = ("neg", "pos") if task == "classification" else ()
    return Model("m", task, labels, "external", {}, policy or Policy(), NOW)


def row(raw: dict[str, Any], task: str = "generation", policy: Policy | None = None) -> dict[str, Any]:
    return to_row(
        model(task, policy), parse_item(raw), NOW, max_text_chars=1000, max_metadata_bytes=1000, max_metadata_depth=4
    )


def refused(raw: dict[str, Any], field: str, task: str = "generation", policy: Policy | None = None) -> str:
    with pytest.raises(ValidationError) as caught:
        row(raw, task, policy)
    assert caught.value.field == field, caught.value.message
    return caught.value.message


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ({"prediction_id": P1, "label": "pos"}, FeedbackKind.LABEL),
        ({"prediction_id": P1, "thumbs": "up"}, FeedbackKind.THUMBS),
        ({"prediction_id": P1, "rating": 4}, FeedbackKind.RATING),
        ({"prediction_id": P1, "correction": "Better."}, FeedbackKind.CORRECTION),
        ({"prediction_id": P1, "signal": "copied", "value": True}, FeedbackKind.IMPLICIT),
        ({"chosen_prediction_id": P1, "rejected_prediction_id": P2}, FeedbackKind.PREFERENCE),
        ({"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go away.", "strength": 0.5}, FeedbackKind.PREFERENCE),
        ({"text": "Fine.", "label": "pos"}, FeedbackKind.EXAMPLE),
    ],
)
def test_each_shape_is_its_kind(raw: dict[str, Any], kind: FeedbackKind) -> None:
    assert feedback_kind(parse_item(raw)) == kind


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"prediction_id": P1, "rating": 4, "correction": "x"}, "correction"),
        ({"prediction_id": P1, "signal": "copied"}, "value"),
        ({"prediction_id": P1, "thumbs": "up", "value": 1}, "value"),
        ({"chosen_prediction_id": P1}, "rejected_prediction_id"),
        ({"chosen_prediction_id": P1, "rejected_prediction_id": P2, "prediction_id": P1}, "prediction_id"),
        ({"chosen_prediction_id": P1, "rejected_prediction_id": P2, "rating": 5}, "rating"),
        ({"prompt": "Hi?", "chosen": "Hello."}, "rejected"),
        ({"prediction_id": P1, "thumbs": "up", "strength": 0.5}, "strength"),
        ({}, "prediction_id"),
    ],
)
def test_mixed_or_incomplete_shapes_are_refused_naming_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        feedback_kind(parse_item(raw))
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"prediction_id": P1, "rating": 6}, "rating"),
        ({"prediction_id": P1, "rating": True}, "rating"),
        ({"chosen_prediction_id": P1, "rejected_prediction_id": P2, "strength": 1.5}, "strength"),
        ({"chosen_prediction_id": P1, "rejected_prediction_id": P2, "strength": -0.1}, "strength"),
        ({"chosen_prediction_id": P1, "rejected_prediction_id": P2, "strength": True}, "strength"),
        ({"chosen_prediction_id": P1, "rejected_prediction_id": P2, "strength": "1"}, "strength"),
        ({"prediction_id": P1, "signal": "copied", "value": "yes"}, "value"),
        ({"prediction_id": P1, "signal": "dwell_ms", "value": 10**400}, "value"),
        ({"prediction_id": P1, "correction": ""}, "correction"),
    ],
)
def test_out_of_range_or_mistyped_values_are_refused_by_the_schema(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_item(raw)
    assert caught.value.field == field


def test_generation_payloads() -> None:
    assert row({"prediction_id": P1, "correction": "The capital is Paris."})["payload"] == {
        "correction": "The capital is Paris."
    }
    pair = row({"chosen_prediction_id": P1.upper(), "rejected_prediction_id": P2})
    assert (pair["kind"], pair["prediction_id"]) == ("preference", P1)
    assert pair["payload"] == {"rejected_prediction_id": P2, "strength": 1.0}
    standalone = row({"prompt": "Hi?", "chosen": "Hello!", "rejected": "Bye.", "strength": 0.25})
    assert standalone["prediction_id"] is None
    assert standalone["payload"] == {"prompt": "Hi?", "chosen": "Hello!", "rejected": "Bye.", "strength": 0.25}
    assert row({"prediction_id": P1, "signal": "dwell_ms", "value": 1500})["payload"] == {
        "signal": "dwell_ms",
        "value": 1500.0,
    }
    assert row({"prediction_id": P1, "signal": "copied", "value": True})["payload"]["value"] is True


def test_every_free_text_is_scrubbed_of_personal_data() -> None:
    mail = "write to jane.doe@example.com"
    assert "jane.doe@example.com" not in str(row({"prediction_id": P1, "correction": mail})["payload"])
    standalone = row({"prompt": mail, "chosen": f"ok, {mail}", "rejected": "no"})["payload"]
    assert "jane.doe@example.com" not in str(standalone)


def test_a_preference_needs_two_different_answers() -> None:
    refused({"chosen_prediction_id": P1, "rejected_prediction_id": P1}, "rejected_prediction_id")
    refused({"prompt": "Hi?", "chosen": "Same.", "rejected": "Same."}, "rejected")


def test_unknown_signal_is_refused_naming_it_and_a_declared_one_is_taken() -> None:
    message = refused({"prediction_id": P1, "signal": "shared", "value": 1}, "signal")
    assert "'shared'" in message
    declared = Policy().updated({"implicit_signals": "shared"})
    assert row({"prediction_id": P1, "signal": "shared", "value": 1}, policy=declared)["payload"]["signal"] == "shared"
    message = refused({"prediction_id": P1, "signal": "shared", "value": 1}, "signal", task="classification")
    assert "'shared'" in message


def test_each_task_refuses_the_other_tasks_kinds() -> None:
    message = refused({"prediction_id": P1, "correction": "No."}, "correction", task="classification")
    assert message.startswith("a classification model takes")
    refused({"chosen_prediction_id": P1, "rejected_prediction_id": P2}, "preference", task="classification")
    assert "generative model takes" in refused({"prediction_id": P1, "label": "pos"}, "label")
    refused({"text": "Fine.", "label": "pos"}, "example")


def test_classification_takes_implicit_signals() -> None:
    stored = row({"prediction_id": P1, "signal": "copied", "value": False}, task="classification")
    assert (stored["kind"], stored["payload"]) == ("implicit", {"signal": "copied", "value": False})


# -- outcomes --------------------------------------------------------------------------------


def served(pid: str, response: str = "An answer.", version: int = 1, prompt: str = "Q?") -> Served:
    answer = GenAnswer(response, finish_reason="stop").to_answer()
    return Served(pid, version, "champion", prompt, answer, NOW)


def event(
    kind: FeedbackKind,
    payload: dict[str, Any],
    pid: str | None = P1,
    at: int = 0,
    on: Served | None = None,
    related: Served | None = None,
) -> FeedbackEvent:
    fb = Feedback(str(uuid.uuid4()), "m", kind, pid, None, payload, None, None, NOW + timedelta(seconds=at))
    return FeedbackEvent(fb, served(pid) if on is None and pid is not None else on, related=related)


def test_generation_outcomes_by_kind() -> None:
    rule = GenerationOutcomes(Policy().generation)
    assert rule.outcome(event(FeedbackKind.RATING, {"rating": 4})) is True
    assert rule.outcome(event(FeedbackKind.RATING, {"rating": 3})) is None
    assert rule.outcome(event(FeedbackKind.RATING, {"rating": 2})) is False
    assert rule.outcome(event(FeedbackKind.THUMBS, {"thumbs": "down"})) is False
    assert rule.outcome(event(FeedbackKind.CORRECTION, {"correction": "x"})) is False
    assert rule.outcome(event(FeedbackKind.IMPLICIT, {"signal": "copied", "value": True})) is None
    stricter = GenerationOutcomes(Policy().updated({"sft_min_rating": 5}).generation)
    assert stricter.outcome(event(FeedbackKind.RATING, {"rating": 4})) is None


def test_a_correction_beats_a_later_rating_and_the_latest_of_one_rank_wins() -> None:
    rule = GenerationOutcomes(Policy().generation)
    correction = event(FeedbackKind.CORRECTION, {"correction": "x"}, at=0)
    rating = event(FeedbackKind.RATING, {"rating": 5}, at=1)
    assert rule.deciding([correction, rating]) == [correction]
    thumbs = event(FeedbackKind.THUMBS, {"thumbs": "down"}, at=2)
    assert rule.deciding([rating, thumbs]) == [thumbs]


def test_a_preference_decides_both_answers() -> None:
    rule = GenerationOutcomes(Policy().generation)
    pref = event(
        FeedbackKind.PREFERENCE,
        {"rejected_prediction_id": P2, "strength": 1.0},
        on=served(P1, "Good.", version=1),
        related=served(P2, "Bad.", version=2),
    )
    decided = {e.prediction_id: e for e in rule.deciding([pref])}
    assert set(decided) == {P1, P2}
    assert rule.outcome(decided[P1]) is True
    assert rule.outcome(decided[P2]) is False
    assert decided[P2].served is not None and decided[P2].served.version == 2
    unjoined = event(FeedbackKind.PREFERENCE, {"rejected_prediction_id": P2, "strength": 1.0})
    assert [e.prediction_id for e in rule.deciding([unjoined])] == [P1]
    standalone = event(FeedbackKind.PREFERENCE, {"prompt": "a", "chosen": "b", "rejected": "c"}, pid=None)
    assert rule.deciding([standalone]) == []


def test_implicit_signals_decide_only_where_the_policy_maps_them() -> None:
    copied = event(FeedbackKind.IMPLICIT, {"signal": "copied", "value": True})
    assert GenerationOutcomes(Policy().generation).deciding([copied]) == []
    mapped = GenerationOutcomes(Policy().updated({"implicit_outcomes": "copied=good,regenerated=bad"}).generation)
    assert mapped.deciding([copied]) == [copied]
    assert mapped.outcome(copied) is True
    assert mapped.outcome(event(FeedbackKind.IMPLICIT, {"signal": "regenerated", "value": 1.0})) is False
    assert mapped.outcome(event(FeedbackKind.IMPLICIT, {"signal": "copied", "value": False})) is None


def test_a_shadow_answer_is_judged_only_when_it_is_the_same_response() -> None:
    rule = GenerationOutcomes(Policy().generation)
    thumbs = event(FeedbackKind.THUMBS, {"thumbs": "up"})
    assert rule.outcome(thumbs, GenAnswer("An answer.").to_answer()) is True
    assert rule.outcome(thumbs, GenAnswer("Another.").to_answer()) is None


def test_implicit_events_never_decide_a_classification_label() -> None:
    labels = ("neg", "pos")
    pos = Served(P1, 1, "champion", "Great phone.", {"label": "pos", "probabilities": {"neg": 0.1, "pos": 0.9}}, NOW)
    thumbs = event(FeedbackKind.THUMBS, {"thumbs": "down"}, at=0, on=pos)
    signal = event(FeedbackKind.IMPLICIT, {"signal": "copied", "value": True}, at=1, on=pos)
    assert latest_per_prediction([thumbs, signal]) == [thumbs]
    assert latest_per_prediction([signal]) == []
    examples, counts = derive_examples([thumbs, signal], labels)
    assert [(ex.text, ex.label) for ex in examples] == [("Great phone.", "neg")]
    assert counts["ignored_kind"] == 1


@pytest.mark.parametrize(
    ("response", "refusal"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("I can\u2019t share that.", True),
        ("As an AI, I do not have opinions.", True),
        ("Sorry, I cannot do this.", True),
        ("I can help with that! Here is how.", False),
        ("Sorry for the wait: the answer is 4.", False),
        ("Paris.", False),
    ],
)
def test_refusals_are_recognised_by_their_opening(response: str, refusal: bool) -> None:
    assert is_refusal(response) is refusal


def test_answer_categories() -> None:
    task = get_task("generation")
    assert task.answer_category(GenAnswer("Paris.", finish_reason="stop").to_answer()) == "answer"
    assert task.answer_category(GenAnswer("Paris is the cap", finish_reason="length").to_answer()) == "truncated"
    assert task.answer_category(GenAnswer("I cannot answer that.").to_answer()) == "refusal"
    assert task.describe(model()) == "generation"


def test_training_a_model_answered_elsewhere_is_refused_clearly() -> None:
    from learnloop.tasks import RetrainInputs

    inputs = RetrainInputs(model(), None, None, NOW, [], [], [], "file:///nowhere", "k")  # family external
    with pytest.raises(NotSupportedError, match="cannot fit its weights"):
        get_task("generation").train(inputs, lambda fraction, message: None)
