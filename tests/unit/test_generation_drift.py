"""Drift of a generative model: its window and reference, and the detectors of text answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from generation_feedback import at, rating, served, thumbs
from learnloop.artifacts import open_store
from learnloop.domain import Prediction
from learnloop.drift import (
    RESPONSE_DETECTORS,
    ReferenceData,
    Window,
    check_all,
    fit_all,
    get_detector,
    is_refusal,
)
from learnloop.drift.reference import DriftReference
from learnloop.errors import ValidationError
from learnloop.policy import Policy
from learnloop.tasks.generation.answers import GenAnswer, Message
from learnloop.tasks.generation.curate import curate
from learnloop.tasks.generation.drift import (
    DETECTOR_KEYS,
    LABELS,
    fit_generation_reference,
    generation_window,
    reference_texts,
    store_generation_reference,
)

WORDS = [
    "sword",
    "shield",
    "forge",
    "anvil",
    "iron",
    "steel",
    "hammer",
    "blade",
    "hilt",
    "leather",
    "coin",
    "bread",
    "ale",
    "inn",
    "quest",
    "dragon",
]
FOREIGN = ["quantum", "ledger", "invoice", "spreadsheet", "compliance", "audit", "portfolio", "derivative"]


def _text(rng: np.random.Generator, words: list[str], n: int) -> str:
    return " ".join(rng.choice(words, size=n).tolist())


def _prediction(i: int, prompt: str, response: str) -> Prediction:
    answer = GenAnswer(response, "stop", messages=(Message("user", prompt),)).to_answer()
    return Prediction(f"p{i}", "npc", 1, "champion", prompt, answer, None, datetime(2026, 1, 1, tzinfo=UTC), 5.0)


def _traffic(
    n: int, seed: int, *, words: list[str] = WORDS, response_words: int = 12, refusal_rate: float = 0.05
) -> list[Prediction]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        prompt = _text(rng, words, int(rng.integers(4, 12)))
        refused = rng.random() < refusal_rate
        response = "I'm sorry, but I can't help with that." if refused else _text(rng, WORDS, response_words)
        out.append(_prediction(i, prompt, response))
    return out


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("I cannot assist with this request.", True),
        ("As an AI, I don't have opinions.", True),
        ("I\u2019m unable to share that.", True),
        ("I must decline.", True),
        ("I'm sorry to hear about your sword! Bring it to the forge.", False),
        ("Aye, I can help with that: give it here.", False),
        ("", False),
    ],
)
def test_refusals_are_recognised(text: str, refused: bool) -> None:
    assert is_refusal(text) is refused


def test_the_window_holds_prompts_and_answers() -> None:
    served = [_prediction(0, "fix my sword", "Aye."), _prediction(1, "tell me a secret", "I can't share that.")]
    window = generation_window(served)
    assert list(window.texts) == ["fix my sword", "tell me a secret"]
    assert list(window.responses or []) == ["Aye.", "I can't share that."]
    assert window.labels == LABELS
    np.testing.assert_array_equal(window.probabilities, [[1.0, 0.0], [0.0, 1.0]])
    assert len(generation_window([])) == 0


def test_reference_fits_the_generation_detectors_only_and_round_trips() -> None:
    traffic = _traffic(400, seed=0)
    reference = fit_generation_reference(
        [p.text for p in traffic], [p.answer["response"] for p in traffic], source="snapshot"
    )
    assert set(reference.summaries) == set(DETECTOR_KEYS)
    back = DriftReference.from_bytes(reference.to_bytes(), "drift/npc/v2.json")
    assert back == reference and back.labels == LABELS


def test_same_traffic_is_quiet_and_each_shift_is_seen_by_its_detector() -> None:
    traffic = _traffic(600, seed=0)
    reference = fit_generation_reference(
        [p.text for p in traffic], [p.answer["response"] for p in traffic], source="snapshot"
    )

    def alarms(served: list[Prediction]) -> set[str]:
        return {r.detector for r in check_all(reference.summaries, generation_window(served)) if r.drifted}

    assert alarms(_traffic(400, seed=1)) == set()
    assert {"oov", "multivariate"} <= alarms(_traffic(400, seed=2, words=WORDS[:4] + FOREIGN))
    assert "response_length" in alarms(_traffic(400, seed=3, response_words=30))
    refusing = alarms(_traffic(400, seed=4, refusal_rate=0.4))
    assert "refusal" in refusing and not refusing & {"text_length", "oov", "multivariate"}  # the prompts are as before


def test_reference_texts_come_from_every_set_and_part() -> None:
    a, b = served("p1", "Aye.", prompt="fix my sword"), served("p2", "Go away.", prompt="fix my sword")
    sets = curate([rating(a, 5, when=1), rating(b, 1, when=2), thumbs(a, True, when=3)], Policy(), at(10))
    prompts, responses = reference_texts(sets)
    assert prompts == ["fix my sword"]
    assert set(responses) == {"Aye.", "Go away."}


def test_classifier_references_leave_the_answer_detectors_out() -> None:
    rng = np.random.default_rng(0)
    texts = [_text(rng, WORDS, 6) for _ in range(300)]
    proba = np.tile([[0.3, 0.7]], (300, 1))
    summaries = fit_all(ReferenceData(texts, proba, ("neg", "pos")))
    assert not RESPONSE_DETECTORS & set(summaries)
    # a window without text answers against a summary that has them: insufficient, and said why
    gen = fit_generation_reference(texts, texts, source="snapshot")
    result = get_detector("refusal").check(gen.summaries["refusal"], Window(texts, proba, ("neg", "pos")))
    assert result.status == "insufficient_data" and "no text answers" in result.message
    json.dumps(result.to_dict(), allow_nan=False)


def test_a_window_needs_one_answer_per_text() -> None:
    with pytest.raises(ValidationError, match="one answer per text"):
        Window(["a", "b"], np.full((2, 2), 0.5), LABELS, responses=["only one"])


def test_a_versions_reference_is_stored_from_its_snapshot(tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    answers = [served(f"p{i}", f"answer {i}", prompt=f"prompt {i}") for i in range(30)]
    sets = curate([thumbs(a, True, when=i) for i, a in enumerate(answers)], Policy(), at(100))
    key, error = store_generation_reference(store, "npc", "models/npc/abc-v2", sets)
    assert error is None and key == "drift/npc/abc-v2.json"
    reference = DriftReference.from_bytes(store.get_bytes(key), key)
    assert set(reference.summaries) == set(DETECTOR_KEYS) and reference.n == 30
    empty = curate([], Policy(), at(100))
    assert store_generation_reference(store, "npc", "models/npc/abc-v3", empty) == (
        None,
        "no prompts in the snapshot to fit a drift reference on",
    )
