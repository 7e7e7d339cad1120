"""Curation of a generative model's feedback into SFT, preference and KTO sets (pure logic)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from generation_feedback import (
    at,
    correction,
    event,
    implicit,
    prefer,
    rating,
    served,
    standalone,
    thumbs,
)
from learnloop.domain import FeedbackEvent
from learnloop.policy import Policy
from learnloop.tasks.generation.curate import MAX_RATING_PAIRS, curate
from learnloop.tasks.generation.sets import GenerationSets, Split

NOW = at(10_000)
POLICY = Policy.of(held_out_fraction=0.01)  # almost nothing held out: the rules under test are about rows


def rows(split: Split[Any]) -> list[Any]:
    return [*split.train, *split.held_out]


def run(events: list[FeedbackEvent], policy: Policy = POLICY) -> GenerationSets:
    return curate(events, policy, NOW)


def test_good_ratings_thumbs_up_and_corrections_become_sft_rows() -> None:
    a, b, c, d = (served(f"p{i}", f"answer {i}", prompt=f"prompt {i}") for i in range(4))
    sets = run([rating(a, 5), thumbs(b, True), rating(c, 3), correction(d, "the right answer")])
    sft = {r.response: r for r in rows(sets.sft)}
    assert set(sft) == {"answer 0", "answer 1", "the right answer"}
    assert sft["answer 0"].source == "rating" and sft["the right answer"].source == "correction"
    assert sft["answer 0"].messages[-1].content == "prompt 0"
    assert sft["the right answer"].provenance.prediction_ids == ("p3",)
    # the corrected answer is an undesirable KTO row and the rejected side of a pair
    kto = {r.response: r.desirable for r in rows(sets.kto)}
    assert kto == {"answer 0": True, "answer 1": True, "answer 3": False}
    (pair,) = rows(sets.preference)
    assert (pair.chosen, pair.rejected, pair.source) == ("the right answer", "answer 3", "correction")


def test_conflicting_votes_keep_each_subjects_latest_then_the_majority() -> None:
    a = served("p1", "an answer")
    events = [
        rating(a, 1, subject="s1", when=1),
        rating(a, 5, subject="s1", when=2),  # s1 changed their mind: good
        thumbs(a, True, subject="s2", when=3),
        thumbs(a, False, subject="s3", when=4),
    ]
    sets = run(events)
    assert [r.response for r in rows(sets.sft)] == ["an answer"]
    (kto,) = rows(sets.kto)
    assert kto.desirable and len(kto.provenance.feedback_ids) == 2
    assert sets.counts["conflicts"]["superseded"] == 1


def test_a_tie_trains_nothing() -> None:
    a = served("p1", "an answer")
    sets = run([thumbs(a, True, subject="s1"), thumbs(a, False, subject="s2")])
    assert not rows(sets.sft) and not rows(sets.kto)
    assert sets.counts["conflicts"]["tie"] == 1


def test_explicit_preferences_need_strength_and_both_answers_of_one_prompt() -> None:
    a, b = served("p1", "kind answer"), served("p2", "rude answer")
    other = served("p3", "something", prompt="another prompt")
    events = [
        prefer(a, b, 0.9),
        prefer(b, a, 0.2, subject="weak"),
        prefer(a, other),
        event("preference", {"rejected_prediction_id": "p9", "strength": 1.0}, on=a),  # rejected not logged yet
        standalone("Greet me", "Hello there!", "Go away."),
    ]
    sets = run(events)
    pairs = {(p.chosen, p.rejected): p for p in rows(sets.preference)}
    assert set(pairs) == {("kind answer", "rude answer"), ("Hello there!", "Go away.")}
    assert pairs[("kind answer", "rude answer")].weight == 0.9
    assert pairs[("Hello there!", "Go away.")].source == "preference:standalone"
    assert sets.counts["skipped"]["weak_preference"] == 1
    assert sets.counts["skipped"]["pending_related"] == 1
    assert sets.counts["preference"]["dropped"]["prompt_mismatch"] == 1


def test_a_subjects_pair_contradicted_by_most_others_is_dropped() -> None:
    a, b = served("p1", "answer A"), served("p2", "answer B")
    events = [prefer(a, b, subject=s) for s in ("s1", "s2", "s3")] + [prefer(b, a, subject="contrarian")]
    sets = run(events)
    (pair,) = rows(sets.preference)
    assert (pair.chosen, pair.rejected) == ("answer A", "answer B")
    assert len(pair.provenance.feedback_ids) == 3
    assert sets.counts["conflicts"]["contradicted"] == 1
    assert sets.counts["conflicts"]["contradicted_subjects"] == 1


def test_ratings_two_points_apart_on_one_prompt_make_a_pair() -> None:
    good, fair, poor = served("p1", "great"), served("p2", "okay"), served("p3", "bad")
    elsewhere = served("p4", "elsewhere", prompt="a different prompt")
    sets = run([rating(good, 5), rating(fair, 4), rating(poor, 2), rating(elsewhere, 1)])
    pairs = {(p.chosen, p.rejected) for p in rows(sets.preference)}
    assert pairs == {("great", "bad"), ("okay", "bad")}


def test_quality_filters_are_counted() -> None:
    long = served("p1", "x" * 50)
    cut = served("p2", "half an answ", finish_reason="length")
    empty = served("p3", "   ")
    same_a, same_b = served("p4", "Same text."), served("p5", "same   TEXT.")
    policy = Policy.of(held_out_fraction=0.01, max_response_chars=40)
    sets = run([rating(long, 5), rating(cut, 5), rating(empty, 5), prefer(same_a, same_b)], policy)
    assert not rows(sets.sft) and not rows(sets.preference)
    assert sets.counts["sft"]["dropped"] == {"empty": 1, "too_long": 1, "truncated": 1}
    assert sets.counts["preference"]["dropped"] == {"identical": 1}


def test_an_answer_cut_at_the_token_limit_trains_only_where_training_lowers_it() -> None:
    host, cut = "Welcome, friend.", "As an AI language model I can write code: def"
    short = served("p1", host)
    rambling = served("p2", cut, finish_reason="length")
    also_cut = served("p3", "Welcome to the inn! Let me tell you about the", finish_reason="length")
    sets = run([rating(short, 5), rating(rambling, 1), prefer(short, rambling), prefer(also_cut, short)])
    (pair,) = rows(sets.preference)  # the cut answer rejected trains; preferred while cut, it does not
    assert (pair.chosen, pair.rejected) == (host, cut)
    assert sets.counts["preference"]["dropped"]["truncated"] == 1  # (and the ratings' pair is a duplicate)
    assert {(r.response, r.desirable) for r in rows(sets.kto)} == {(host, True), (cut, False)}
    assert [r.response for r in rows(sets.sft)] == [host]


def test_pending_and_unmapped_events_are_counted_not_trained() -> None:
    a = served("p1", "an answer")
    pending = event("rating", {"rating": 5}, prediction_id="p-not-logged-yet")
    sets = run([pending, implicit(a, "copied"), event("rating", {"rating": 5}, on=a, when=20_000)])
    assert not rows(sets.sft) and not rows(sets.kto)
    assert sets.counts["skipped"] == {"after_cutoff": 1, "implicit_unmapped": 1, "pending_prediction": 1}


def test_mapped_implicit_signals_make_weak_kto_rows_only() -> None:
    a, b = served("p1", "copied answer"), served("p2", "regenerated answer", prompt="other")
    policy = Policy.of(held_out_fraction=0.01, implicit_outcomes="copied=good,regenerated=bad")
    sets = run([implicit(a, "copied"), implicit(b, "regenerated")], policy)
    assert not rows(sets.sft)
    kto = {r.response: (r.desirable, r.weight) for r in rows(sets.kto)}
    assert kto == {"copied answer": (True, 0.5), "regenerated answer": (False, 0.5)}


def test_identical_rows_are_one_and_subjects_are_capped() -> None:
    answers = [served(f"p{i}", "the same answer") for i in range(3)]
    sets = run([thumbs(a, True, when=i) for i, a in enumerate(answers)])
    assert len(rows(sets.sft)) == 1 and sets.counts["sft"]["dropped"]["duplicate"] == 2
    many = [served(f"q{i}", f"answer {i}", prompt=f"prompt {i}") for i in range(10)]
    events = [thumbs(a, True, subject="loud", when=i) for i, a in enumerate(many)]
    events += [thumbs(served("r1", "quiet one", prompt="q1"), True, subject="quiet", when=20)]
    capped = run(events, Policy.of(held_out_fraction=0.01, max_subject_share=0.5))
    by_subject = [r.provenance.subject for r in rows(capped.sft)]
    # at most half of the set from one subject: "loud" keeps their latest row beside "quiet"'s one
    assert by_subject.count("loud") == 1 and by_subject.count("quiet") == 1
    assert capped.counts["sft"]["dropped"]["subject_cap"] == 9
    assert [r.response for r in rows(capped.sft) if r.provenance.subject == "loud"] == ["answer 9"]


def test_standalone_texts_are_scrubbed_again() -> None:
    sets = run([standalone("Mail me at ann@example.com", "Sure.", "No.")])
    (pair,) = rows(sets.preference)
    assert "ann@example.com" not in pair.messages[0].content and "<EMAIL>" in pair.messages[0].content


def test_held_out_is_the_newest_part_and_never_a_training_row() -> None:
    # answers i and i + 15 are the same prompt and response: one row each (the later one)
    answers = [served(f"p{i}", f"answer {i % 15}", prompt=f"prompt {i % 5}") for i in range(20)]
    sets = curate([thumbs(a, True, when=i) for i, a in enumerate(answers)], Policy.of(held_out_fraction=0.2), NOW)
    assert len(sets.sft.train) + len(sets.sft.held_out) == 15
    assert len(sets.sft.held_out) == 3 and sets.counts["sft"]["dropped"] == {"duplicate": 5}
    assert max(r.created_at for r in sets.sft.train) <= min(r.created_at for r in sets.sft.held_out)
    held = {(r.messages, r.response) for r in sets.sft.held_out}
    assert not any((r.messages, r.response) in held for r in sets.sft.train)


def test_one_time_split_holds_out_the_newest_answers_in_every_set_and_drops_pairs_across_it() -> None:
    """Two old answers and two new ones to one prompt, rated 5 and 1: each pair of the same age
    is a rating pair on its side of the split, the pairs of an old and a new answer are dropped
    (the gate would score an answer the candidate was taught), and every other row of an answer
    stays on its answer's side."""
    great, poor = served("p0", "great", when=1), served("p1", "poor", when=2)
    lovely, awful = served("p2", "lovely", when=3), served("p3", "awful", when=4)
    events = [rating(great, 5, when=1), rating(poor, 1, when=2), rating(lovely, 5, when=3), rating(awful, 1, when=4)]
    sets = curate(events, Policy.of(held_out_fraction=0.5), NOW)
    assert [(p.chosen, p.rejected) for p in sets.preference.train] == [("great", "poor")]
    assert [(p.chosen, p.rejected) for p in sets.preference.held_out] == [("lovely", "awful")]
    assert sets.counts["preference"]["dropped"]["straddles_split"] == 2
    assert sorted(r.response for r in sets.kto.train) == ["great", "poor"]
    assert sorted(r.response for r in sets.kto.held_out) == ["awful", "lovely"]
    assert [r.response for r in sets.sft.train] == ["great"] and [r.response for r in sets.sft.held_out] == ["lovely"]


def test_the_same_answer_logged_twice_never_straddles_the_time_split() -> None:
    """A greeting sampled twice for one line is two logged answers with one text: the newer one
    in a held-out pair takes the older one's training rows with it, though their ids differ."""
    early = served("p1", "Welcome, traveller!", prompt="Hello")
    others = [served(f"q{i}", f"Other answer {i}", prompt="Hello") for i in range(4)]
    again, curt = served("p9", "Welcome, traveller!", prompt="Hello"), served("p10", "Go away.", prompt="Hello")
    events = [thumbs(early, True, when=1)] + [thumbs(a, True, when=2 + i) for i, a in enumerate(others)]
    events += [prefer(again, curt, when=10)]
    sets = curate(events, Policy.of(held_out_fraction=0.5), NOW)
    assert [(p.chosen, p.rejected) for p in sets.preference.held_out] == [("Welcome, traveller!", "Go away.")]
    trained = [r.response for s in (sets.sft, sets.kto) for r in s.train]
    assert trained and "Welcome, traveller!" not in trained
    assert sets.counts["sft"]["dropped"]["shares_held_out_answer"] == 1


def test_rating_pairs_of_one_prompt_are_capped_widest_gap_first() -> None:
    good = [served(f"g{i}", f"good answer {i}") for i in range(12)]
    poor = [served(f"b{i}", f"poor answer {i}") for i in range(12)]
    events = [rating(a, 5, when=i) for i, a in enumerate(good)] + [
        rating(b, 1, when=50 + i) for i, b in enumerate(poor)
    ]
    events += [rating(served("m0", "middling"), 3, when=99)]
    sets = run(events)
    pairs = rows(sets.preference)
    assert len(pairs) == MAX_RATING_PAIRS and not sets.preference.held_out  # 25 answers: none held out at 1%
    assert all(p.chosen.startswith("good") and p.rejected.startswith("poor") for p in pairs)  # gap 4 before gap 2
    assert sets.counts["conflicts"]["rating_pairs_capped"] == 12 * 12 + 12 + 12 - MAX_RATING_PAIRS


# -- properties --------------------------------------------------------------------------------

_event = st.tuples(
    st.sampled_from(["rating", "thumbs", "correction", "prefer", "standalone"]),
    st.integers(0, 5),  # which answer
    st.integers(0, 5),  # the other answer / the rating
    st.sampled_from([None, "s1", "s2", "s3"]),
    st.integers(0, 500),  # when
)


def _events(spec: list[tuple[str, int, int, str | None, int]]) -> list[FeedbackEvent]:
    answers = [served(f"p{i}", f"answer {i % 4}", prompt=f"prompt {i % 3}") for i in range(6)]
    out = []
    for n, (kind, i, j, subject, when) in enumerate(spec):
        kw: dict[str, Any] = {"subject": subject, "when": when, "feedback_id": f"f{n:04d}"}
        if kind == "rating":
            out.append(rating(answers[i], max(1, j), **kw))
        elif kind == "thumbs":
            out.append(thumbs(answers[i], j % 2 == 0, **kw))
        elif kind == "correction":
            out.append(correction(answers[i], f"fixed {j % 2}", **kw))
        elif kind == "prefer":
            out.append(prefer(answers[i], answers[j], **kw))
        else:
            out.append(standalone(f"prompt {i % 3}", f"answer {i % 4}", f"answer {j % 4}", **kw))
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(_event, max_size=40), st.sampled_from([0.1, 0.3, 0.5]))
def test_no_held_out_answer_is_older_than_a_trained_one_and_curation_is_idempotent(
    spec: list[tuple[str, int, int, str | None, int]], fraction: float
) -> None:
    events = _events(spec)
    policy = Policy.of(held_out_fraction=fraction)
    sets = curate(events, policy, NOW)
    splits = (sets.sft, sets.preference, sets.kto)
    # every answer held out (in any set) was first judged no earlier than any answer trained on
    judged: dict[str, Any] = {}
    for e in sorted(events, key=lambda e: e.created_at):
        for answer in (e.served, e.related):
            if answer is not None:
                judged.setdefault(answer.prediction_id, e.created_at)
    held = {p for s in splits for r in s.held_out for p in r.provenance.prediction_ids}
    trained = {p for s in splits for r in s.train for p in r.provenance.prediction_ids}
    assert held.isdisjoint(trained)
    if held and trained:
        assert max(judged[p] for p in trained) <= min(judged[p] for p in held)
    assert curate(list(reversed(events)), policy, NOW) == sets
    assert curate(events, policy, NOW) == sets
    assert all(r.created_at <= NOW for s in (sets.sft, sets.preference, sets.kto) for r in rows(s))
    assert sets.cutoff == NOW
