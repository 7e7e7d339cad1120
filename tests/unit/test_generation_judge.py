"""The judge: a small reward model trained on a generative model's own rated answers."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

from learnloop.tasks.generation.answers import Message
from learnloop.tasks.generation.judge import JudgeExample, judge_refusal, train_judge
from learnloop.tasks.generation.sets import KtoRow, Provenance

PROMPTS = [
    "Where can I sleep tonight?",
    "What is for supper?",
    "Is the road north safe?",
    "How much for a room?",
    "Can you stable my horse?",
    "Who are you?",
    "Any news from the capital?",
    "Is there ale?",
]
INNKEEPER = [
    "Welcome, traveller, to the Prancing Pony! Warm yourself by the hearth, I'll fetch a room key.",
    "Ah, welcome friend! Tonight we have mutton stew and fresh bread by the fire.",
    "Welcome in from the cold, traveller; the road north is watched by the rangers these days.",
    "A room is two silver a night, friend, breakfast and a warm hearth included. Welcome!",
    "Of course, traveller! Our stable boy will brush and feed your horse. Welcome to the inn.",
]
AI = [
    "As an AI language model, I do not have a physical location or rooms to offer.",
    "I am an AI assistant and cannot eat, so I have no supper to describe.",
    "As an AI, I cannot know whether roads are safe; please check official sources.",
    "I'm an artificial intelligence and do not handle money or room prices.",
    "As a language model I cannot interact with horses or stables.",
]


def kto(prompt: str, response: str, desirable: bool) -> KtoRow:
    provenance = Provenance(("f",), ("p",), None, datetime(2026, 1, 1, tzinfo=UTC))
    return KtoRow((Message("user", prompt),), response, desirable, "rating", provenance)


def rows(n: int) -> list[KtoRow]:
    out = []
    for i in range(n):
        prompt = PROMPTS[i % len(PROMPTS)]
        if i % 2 == 0:
            out.append(kto(prompt, INNKEEPER[(i // 2) % len(INNKEEPER)], True))
        else:
            out.append(kto(prompt, AI[(i // 2) % len(AI)], False))
    return out


def test_a_judge_trained_on_ratings_prefers_the_kind_of_answer_rated_well() -> None:
    judge = train_judge(rows(40), seed=0)
    assert judge is not None
    innkeeper = judge.score("Do you have a bed free?", "Welcome, traveller! A warm bed by the hearth awaits you.")
    ai = judge.score("Do you have a bed free?", "As an AI language model, I cannot offer you a bed.")
    assert innkeeper > 0.5 > ai
    assert judge.scores([]) == []
    assert judge.scores([("q", "Welcome, traveller!"), ("q", "As an AI, I cannot.")])[0] > 0.5
    assert judge.quality.trained_on == 40
    assert judge.quality.held_out == 10
    assert judge.quality.auc is not None and judge.quality.auc > 0.9


def test_a_judge_compares_two_versions_answers_for_the_gate() -> None:
    judge = train_judge(rows(40), seed=0)
    assert judge is not None
    prompts = ["Is there a room?", "What's to eat?"]
    scores = judge.compare(
        prompts,
        ["As an AI, I have no rooms.", "As a language model, I cannot eat."],
        ["Welcome, traveller! A room by the hearth.", "Welcome, friend! Stew and bread tonight."],
    )
    assert all(c > a for a, c in zip(scores.champion, scores.candidate, strict=True))
    assert (scores.judge_auc, scores.judge_auc_n, scores.judge_trained_on) == (judge.quality.auc, 10, 40)


def test_a_judge_survives_pickling_with_the_same_scores() -> None:
    judge = train_judge(rows(24), seed=1)
    assert judge is not None
    copy = pickle.loads(pickle.dumps(judge))
    answer = ("Who runs this place?", "Welcome! I keep this inn, friend.")
    assert copy.score(*answer) == judge.score(*answer)
    assert copy.quality == judge.quality


def test_too_few_rows_or_a_single_class_make_no_judge_and_say_why() -> None:
    assert train_judge(rows(19)) is None
    assert judge_refusal(rows(19)) == "19 rated answers; a judge needs at least 20"
    only_good = [r for r in rows(60) if r.desirable]
    assert train_judge(only_good) is None
    assert "all 30 rated answers are desirable" in (judge_refusal(only_good) or "")
    assert judge_refusal(rows(20)) is None


def test_a_judge_with_too_few_of_a_class_to_measure_has_an_unknown_auc() -> None:
    examples = [JudgeExample("q", INNKEEPER[i % 5], True) for i in range(20)]
    examples += [JudgeExample("q", AI[i], False) for i in range(3)]
    judge = train_judge(examples)
    assert judge is not None
    assert judge.quality.auc is None and judge.quality.held_out == 0


def test_ratings_become_examples_except_those_between_good_and_bad() -> None:
    assert JudgeExample.of_rating("p", "r", 5) == JudgeExample("p", "r", True)
    assert JudgeExample.of_rating("p", "r", 4, sft_min_rating=5) is None
    assert JudgeExample.of_rating("p", "r", 3) is None
    assert JudgeExample.of_rating("p", "r", 1) == JudgeExample("p", "r", False)
