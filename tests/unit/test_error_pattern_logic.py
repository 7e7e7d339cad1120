"""Error patterns' pure logic: clusters, slices and what counts as new."""

from __future__ import annotations

import random

from learnloop.monitoring.patterns import Judged, analyse
from learnloop.monitoring.patterns.novelty import Known, is_new_cluster, overlap
from learnloop.monitoring.patterns.slices import error_slices, excess

TOPICS = {
    "refund": "my refund for order {i} never arrived and support ignores the refund request",
    "battery": "the battery drains in {i} minutes and the battery gets hot while charging",
    "screen": "the screen flickers after {i} days and the screen has dead pixels",
    "shipping": "shipping took {i} weeks and the shipping box was crushed",
}


def rows(seed: int = 0) -> list[Judged]:
    """Texts on four topics; answers on 'refund' are wrong 80% of the time, the others 10%."""
    rng = random.Random(seed)
    out = []
    for topic, template in TOPICS.items():
        for i in range(100):
            wrong = rng.random() < (0.8 if topic == "refund" else 0.1)
            corrected = "negative" if wrong else "positive"
            out.append(Judged(f"{topic}{i}", template.format(i=i), wrong, "positive", corrected, 1, {"topic": topic}))
    return out


def test_errors_concentrated_on_one_topic_make_one_significant_pattern_and_slice() -> None:
    found = analyse(rows(), seed=0)
    significant = [p for p in found.patterns if p.region.significant]
    assert len(significant) == 1 and "refund" in significant[0].terms
    assert significant[0].pairs[0][0] == "positive -> negative"
    assert significant[0].examples and all("refund" in e.text for e in significant[0].examples)
    assert found.k is not None and found.silhouette is not None and found.silhouette > 0.5
    keys = [s.key for s in found.slices]
    assert "metadata.topic=refund" in keys and "term=refund" in keys
    assert not any(k.startswith("metadata.topic=") and k != "metadata.topic=refund" for k in keys)


def test_errors_spread_evenly_make_no_significant_slice() -> None:
    rng = random.Random(1)
    spread = [
        Judged(r.prediction_id, r.text, rng.random() < 0.3, "positive", "negative", 1, r.metadata) for r in rows()
    ]
    slices, tested = error_slices(spread)
    assert tested > 0 and not [s for s in slices if s.key.startswith("metadata.")]


def test_fisher_with_benjamini_hochberg_flags_only_the_excess() -> None:
    # 40 of 50 wrong in the first group, 10 of 50 in the second; 50 of 200 overall
    first, second = excess([(40, 50), (10, 50)], 50, 200)
    assert first.significant and first.q_value < 1e-6
    assert not second.significant and second.q_value >= first.q_value


def test_a_pattern_is_new_unless_it_shares_half_its_terms_with_one_reported() -> None:
    assert overlap(["refund", "order", "support"], ["refund", "order", "ignores"]) == 0.5
    assert not is_new_cluster(["refund", "order", "support"], [["refund", "order", "ignores"]])
    assert is_new_cluster(["refund", "order", "support"], [["battery", "hot"], ["refund", "late", "box", "weeks"]])
    assert not is_new_cluster([], [])  # a cluster without distinctive words is never reported


def test_too_few_disagreements_are_not_clustered() -> None:
    few = rows()[100:200]  # battery: one in ten wrong
    assert 0 < sum(r.wrong for r in few) < 20
    found = analyse(few)
    assert found.k is None and found.patterns == [] and "too few" in found.note


def test_identical_corrected_texts_make_one_pattern() -> None:
    same = [Judged(f"p{i}", "the app crashes on login", i % 2 == 0, "ok", "broken", 1) for i in range(60)]
    found = analyse(same)
    assert len(found.patterns) == 1 and found.patterns[0].size == 30


def test_generated_answers_are_judged_by_the_generation_rule() -> None:
    from generation_feedback import event, served
    from learnloop.monitoring.patterns import judged_answers
    from learnloop.policy import Policy
    from learnloop.tasks.generation.outcomes import GenerationOutcomes

    low, good, fixed, neutral = (served(f"p{i}", "an answer", prompt=f"question {i}") for i in range(4))
    events = [
        event("rating", {"rating": 1}, on=low),
        event("rating", {"rating": 5}, on=good),
        event("correction", {"correction": "a better answer"}, on=fixed),
        event("rating", {"rating": 3}, on=neutral),  # says nothing: left out
    ]
    judged = judged_answers(events, GenerationOutcomes(Policy().generation), ())
    assert [(j.prediction_id, j.wrong, j.pair) for j in judged] == [
        ("p0", True, "answer -> rating 1"),
        ("p1", False, "answer -> rating 5"),
        ("p2", True, "answer -> correction"),
    ]
    assert judged[0].text == "question 0"  # the prompt is what is clustered


def test_known_patterns_admit_each_new_one_once() -> None:
    known = Known([{"type": "cluster", "terms": ["refund", "order"]}, {"type": "slice", "key": "predicted=positive"}])
    assert not known.admit({"type": "cluster", "terms": ["refund", "order", "late"]})
    assert not known.admit({"type": "slice", "key": "predicted=positive"})
    assert known.admit({"type": "cluster", "terms": ["battery", "hot"]})
    assert not known.admit({"type": "cluster", "terms": ["battery", "hot", "charging"]})  # found twice now: once
    assert known.admit({"type": "slice", "key": "metadata.channel=sms"})
