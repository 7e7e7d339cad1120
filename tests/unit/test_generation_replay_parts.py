"""The pure parts of `learnloop replay --task generation`: the stream's split, the simulated
users' feedback rule, the oracle's training sets, the held-out figures and the champions'
timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from learnloop.datasets.preference import PreferencePair, read_orca_dpo_sample
from learnloop.errors import ValidationError
from learnloop.replay.drivers import LoopEvent
from learnloop.replay.generation.config import StreamTrace
from learnloop.replay.generation.data import load_preference_stream, split_stream
from learnloop.replay.generation.evaluate import accuracy, gap_closed, paired
from learnloop.replay.generation.run import champions
from learnloop.replay.generation.users import FeedbackRule, SimulatedUsers, oracle_sets

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def pairs(n: int) -> list[PreferencePair]:
    return [PreferencePair(({"role": "user", "content": f"q{i}"},), f"good {i}", f"bad {i}") for i in range(n)]


def test_the_held_out_slice_is_never_streamed_and_the_split_is_seeded() -> None:
    stream, held = split_stream(pairs(40), limit=20, held_out_fraction=0.25, seed=3)
    assert (len(stream), len(held)) == (15, 5) and not {p.chosen for p in stream} & {p.chosen for p in held}
    assert split_stream(pairs(40), limit=20, held_out_fraction=0.25, seed=3) == (stream, held)
    assert split_stream(pairs(40), limit=20, held_out_fraction=0.25, seed=4) != (stream, held)
    assert [len(part) for part in split_stream(pairs(2), limit=None, held_out_fraction=0.9, seed=0)] == [1, 1]
    with pytest.raises(ValidationError):
        split_stream(pairs(1), limit=None, held_out_fraction=0.25, seed=0)


def test_identical_pairs_are_one_and_no_held_out_pair_shares_an_answer_with_the_stream() -> None:
    twice = pairs(10) + pairs(10)  # every pair twice: without the merge, copies straddle the split
    same_answer = [PreferencePair(({"role": "user", "content": "q0"},), "good 0", "other")]  # q0's chosen again
    stream, held = split_stream(twice + same_answer, limit=None, held_out_fraction=0.5, seed=1)
    assert len(stream) + len(held) <= 11 and len({id(p) for p in stream + held}) == len(stream) + len(held)
    keys = {(p.messages[0]["content"], answer) for p in stream for answer in (p.chosen, p.rejected)}
    assert held and all((p.messages[0]["content"], a) not in keys for p in held for a in (p.chosen, p.rejected))


def test_the_shipped_sample_streams_without_its_longest_pairs(tmp_path: Path) -> None:
    data = load_preference_stream("orca-sample", limit=None, held_out_fraction=0.25, max_chars=1600, seed=0)
    assert data.read == 40 and data.too_long == 4 and len(data.stream) + len(data.held_out) == 36
    with pytest.raises(ValidationError, match="--data-dir"):
        load_preference_stream("hh", data_dir=tmp_path, limit=5, held_out_fraction=0.5, max_chars=9, seed=0)


@pytest.mark.parametrize(("rule", "kinds"), [("both", 3), ("ratings", 2), ("preference", 1)])
def test_users_rate_and_choose_per_the_data_and_the_noisy_ones_the_other_way(rule: str, kinds: int) -> None:
    feedback = FeedbackRule(rule)
    assert feedback.events_per_pair == kinds
    users = SimulatedUsers(noise=0.0, seed=0)
    items = users.react(7).feedback(feedback, "chosen", "rejected")
    assert len(items) == kinds and {i.subject for i in items} == {"user-7"}
    ratings = {i.prediction_id: i.rating for i in items if i.rating is not None}
    assert ratings == ({"chosen": 5, "rejected": 2} if feedback.rates else {})
    prefs = [(i.chosen_prediction_id, i.rejected_prediction_id) for i in items if i.chosen_prediction_id]
    assert prefs == ([("chosen", "rejected")] if feedback.prefers else [])
    liar = SimulatedUsers(noise=0.5, seed=0)
    flipped = next(r for r in (liar.react(i) for i in range(50)) if not r.truthful)
    items = flipped.feedback(feedback, "chosen", "rejected")
    assert all(i.chosen_prediction_id in (None, "rejected") for i in items)
    assert {i.prediction_id: i.rating for i in items if i.rating is not None} == (
        {"rejected": 5, "chosen": 2} if feedback.rates else {}
    )


def test_the_logged_answers_are_the_pairs_answers_to_its_conversation() -> None:
    pair = read_orca_dpo_sample()[0]
    chosen, rejected = SimulatedUsers(0.0, 0).react(0).logged(pair)
    assert (chosen["response"], rejected["response"]) == (pair.chosen, pair.rejected)
    assert chosen["messages"] == [dict(m) for m in pair.messages] and chosen["source_model"] == "preference-data"


def test_the_oracle_trains_on_every_pair_and_on_ratings_only_when_users_rate() -> None:
    sets = oracle_sets(pairs(6), FeedbackRule.BOTH, T0)
    assert (len(sets.sft.train), len(sets.preference.train), len(sets.kto.train)) == (6, 6, 12)
    assert not sets.preference.held_out and {r.response for r in sets.sft.train} == {f"good {i}" for i in range(6)}
    only = oracle_sets(pairs(6), FeedbackRule.PREFERENCE, T0)
    assert (len(only.sft.train), len(only.preference.train), len(only.kto.train)) == (0, 6, 0)


def test_held_out_figures_pair_the_same_pairs() -> None:
    base = [1.0, -1.0, -2.0, 3.0, -0.5, 0.0]
    better = [1.0, 2.0, 1.0, 3.0, 0.5, 0.1]
    a = accuracy(base)
    assert (a["n"], a["right"], a["accuracy"]) == (6, 2, 2 / 6) and a["ci95"][0] < 2 / 6 < a["ci95"][1]
    c = paired(base, better)
    assert (c["wins"], c["losses"], c["difference"]) == (4, 0, 4 / 6) and c["p_better"] == pytest.approx(1 / 16)
    assert paired(base, base)["p_two_sided"] == 1.0
    assert gap_closed(0.5, 0.6, 0.7) == pytest.approx(0.5) and gap_closed(0.5, 0.6, 0.5) is None


def test_the_champions_timeline_follows_promotions_and_a_rollback() -> None:
    trace = StreamTrace(times=[T0 + timedelta(seconds=s) for s in range(10)])

    def event(kind: str, version: int, second: float) -> LoopEvent:
        return LoopEvent(second, kind, version, None, T0 + timedelta(seconds=second))

    trace.events = [event("promoted", 1, 0), event("candidate_rejected", 2, 3.5), event("promoted", 3, 6.5)]
    assert champions(trace, 3) == [(1, 0), (3, 7)]
    assert champions(trace, 1) == [(1, 0), (3, 7), (1, 10)]
