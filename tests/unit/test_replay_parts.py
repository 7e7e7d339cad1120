"""The pure parts of a replay: stream order, simulated users, and the scoring of a trace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binomtest

from learnloop.datasets import read_labelled, uci_sentiment_path
from learnloop.errors import ValidationError
from learnloop.families import get_family
from learnloop.replay.baselines import implied_label, naive_baseline, oracle_baseline, static_baseline
from learnloop.replay.drivers import JobRecord, LoopEvent
from learnloop.replay.report import Trace, labels_to_recover, naive_sentence, summarize, trailing_accuracy
from learnloop.replay.stream import DataFile, Order, Segment, arrange, load_stream
from learnloop.replay.users import PlannedFeedback, SimulatedUsers, UserModel
from learnloop.tasks.classification.fit import predict_labels


def _write(path: Path, rows: list[tuple[str, str]]) -> DataFile:
    path.write_text("".join(f"{t}\t{lab}\n" for t, lab in rows), encoding="utf-8")
    return DataFile(path, text_column="0", label_column="1", header=False)


def test_shuffle_is_a_permutation_and_keep_keeps_the_order() -> None:
    labels = ["a", "b"] * 50
    rng = np.random.default_rng(0)
    shuffled = arrange(labels, Order.SHUFFLE, rng)
    assert sorted(shuffled) == list(range(100))
    assert shuffled != list(range(100))
    assert arrange(labels, Order.KEEP, rng) == list(range(100))


def test_label_shift_moves_from_the_first_label_to_the_last() -> None:
    labels = ["neg", "pos"] * 200
    order = arrange(labels, Order.LABEL_SHIFT, np.random.default_rng(1))
    arranged = [labels[i] for i in order]
    first, last = arranged[:100], arranged[-100:]
    assert first.count("neg") > 80
    assert last.count("pos") > 80
    assert sorted(order) == list(range(400))


def test_stream_concatenates_files_into_named_segments(tmp_path: Path) -> None:
    a = _write(tmp_path / "phones.tsv", [(f"phone {i}", str(i % 2)) for i in range(30)])
    b = _write(tmp_path / "movies.tsv", [(f"movie {i}", str(i % 2)) for i in range(20)])
    stream = load_stream([a, b, a], order=Order.KEEP, limit_per_segment=25)
    assert [s.name for s in stream.segments] == ["phones", "movies", "phones'"]
    assert [(s.start, s.stop) for s in stream.segments] == [(0, 25), (25, 45), (45, 70)]
    assert stream.texts[25] == "movie 0" and stream.texts[44] == "movie 19"


def test_a_limited_label_shift_segment_still_holds_both_labels(tmp_path: Path) -> None:
    rows = [(f"t{i}", "0") for i in range(100)] + [(f"u{i}", "1") for i in range(100)]
    stream = load_stream([_write(tmp_path / "s.tsv", rows)], order=Order.LABEL_SHIFT, limit_per_segment=60, seed=3)
    assert len(stream) == 60
    assert {"0", "1"} <= set(stream.labels)
    assert stream.labels[:15].count("0") > stream.labels[-15:].count("0")


def test_user_model_rejects_impossible_settings() -> None:
    with pytest.raises(ValidationError) as err:
        UserModel(feedback_rate=0.0)
    assert err.value.field == "feedback_rate"
    with pytest.raises(ValidationError):
        UserModel(noise=1.0)
    with pytest.raises(ValidationError):
        UserModel(delay=-1)


def _plans(model: UserModel, n: int, seed: int = 0, served: str | None = None) -> list[object]:
    users = SimulatedUsers(model, ["0", "1"], seed)
    out = []
    for i in range(n):
        truth = str(i % 2)
        out.append(users.react(i, users.subject_for(), truth, served if served is not None else truth))
    return out


def test_users_give_feedback_at_the_configured_rate_and_noise() -> None:
    n = 20_000
    plans = [p for p in _plans(UserModel(feedback_rate=0.3, noise=0.1), n) if p is not None]
    # 4 standard deviations either side: fails on a wrong rate, not on chance.
    assert abs(len(plans) - 0.3 * n) < 4 * np.sqrt(n * 0.3 * 0.7)
    wrong = sum(not p.truthful for p in plans)  # type: ignore[attr-defined]
    assert abs(wrong - 0.1 * len(plans)) < 4 * np.sqrt(len(plans) * 0.1 * 0.9)


def test_adversarial_users_always_name_a_wrong_label() -> None:
    users = SimulatedUsers(UserModel(feedback_rate=1.0, noise=0.0, adversarial=0.2, subjects=50), ["0", "1"], 0)
    assert len(users.adversaries) == 10
    for i in range(2_000):
        subject = users.subject_for()
        plan = users.react(i, subject, "1", "1")
        assert plan is not None
        assert plan.truthful == (subject not in users.adversaries)
        assert (plan.label == "0") == (subject in users.adversaries)


def test_thumbs_judge_the_served_answer() -> None:
    users = SimulatedUsers(UserModel(feedback_rate=1.0, noise=0.0, thumbs=True), ["0", "1"], 0)
    right = users.react(0, "user-1", truth="1", served="1")
    wrong = users.react(1, "user-1", truth="1", served="0")
    assert right is not None and right.thumbs == "up" and right.label is None and right.truthful
    assert wrong is not None and wrong.thumbs == "down" and wrong.truthful


def test_feedback_is_due_after_the_delay_and_replays_reproduce() -> None:
    a = _plans(UserModel(delay=7), 500, seed=5)
    b = _plans(UserModel(delay=7), 500, seed=5)
    c = _plans(UserModel(delay=7), 500, seed=6)
    assert a == b
    assert a != c
    assert all(p.due == p.item + 7 for p in a if p is not None)  # type: ignore[attr-defined]


@given(st.lists(st.booleans(), min_size=1, max_size=200), st.integers(1, 50))
def test_trailing_accuracy_is_the_mean_of_the_last_window(bits: list[bool], window: int) -> None:
    correct = np.array(bits)
    got = trailing_accuracy(correct, window)
    for i in range(len(bits)):
        assert got[i] == pytest.approx(correct[max(0, i + 1 - window) : i + 1].mean())


def test_labels_to_recover_counts_labels_until_the_loop_stays_near_the_oracle() -> None:
    n = 400
    oracle = np.ones(n, dtype=bool)
    loop = np.ones(n, dtype=bool)
    loop[:200:2] = False  # 50% behind for the first 200 items, then level
    sent = np.arange(0, n, 4)  # a label every 4 items
    result = labels_to_recover(loop, oracle, Segment("s", 0, n), sent, window=50)
    assert result["recovered"]
    assert 200 <= result["items"] <= 260
    assert result["labels"] == int((sent < result["items"]).sum())
    never = labels_to_recover(np.zeros(n, dtype=bool), oracle, Segment("s", 0, n), sent, window=50)
    assert not never["recovered"] and never["labels"] is None


def _trace(truth: list[str], served: list[str], versions: list[int], events: list[LoopEvent]) -> Trace:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    trace = Trace([Segment("pre", 0, 10), Segment("post", 10, len(truth))], post_shift_start=10)
    trace.truth, trace.served, trace.versions = truth, served, versions
    trace.times = [start + timedelta(seconds=i) for i in range(len(truth))]
    trace.events = events
    return trace


def test_summary_compares_loop_and_static_on_the_post_shift_items_only() -> None:
    n = 110
    truth = ["1"] * n
    static = ["1"] * 10 + ["0"] * 50 + ["1"] * 50  # wrong on 50 post-shift items
    served = ["0"] * 10 + ["1"] * 90 + ["0"] * 10  # wrong on the 10 pre-shift and 10 post-shift items
    summary = summarize(_trace(truth, served, [1] * n, []), static, truth, window=20, rejected_versions=set())
    cmp = summary["loop_vs_static"]
    assert summary["post_shift_items"] == 100
    assert summary["post_shift"]["static"]["accuracy"] == 0.5
    assert summary["post_shift"]["loop"]["accuracy"] == 0.9
    assert cmp["relative_gain"] == pytest.approx(0.8)
    assert (cmp["loop_only_right"], cmp["static_only_right"]) == (50, 10)
    assert cmp["p_value"] == pytest.approx(binomtest(50, 60, 0.5, alternative="greater").pvalue)
    assert summary["oracle_gap_closed"] == pytest.approx(0.8)


def test_summary_flags_a_rejected_version_that_served() -> None:
    n = 20
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=12)
    events = [LoopEvent(5, "candidate_rejected", 2, "worse", at)]
    trace = _trace(["1"] * n, ["1"] * n, [1] * 15 + [2] * 5, events)
    summary = summarize(trace, ["1"] * n, ["1"] * n, window=10, rejected_versions={2})
    assert summary["safety"]["rejected_versions_served"] == [2]
    assert summary["events"] == [{"item": 12, "kind": "candidate_rejected", "version": 2, "reason": "worse"}]


_YELP = read_labelled(uci_sentiment_path("yelp"), text_column="0", label_column="1", header=False)
YELP = list(zip(_YELP.texts, _YELP.labels, strict=True))


def test_the_naive_baseline_refits_every_n_labels_and_serves_from_the_next_item() -> None:
    train, stream = YELP[:300], YELP[300:400]
    texts = [t for t, _ in stream]
    # Every label a user gave is flipped: the naive loop learns them as given, with no gate.
    flipped = {"0": "1", "1": "0"}
    feedback = [(k, texts[k], flipped[stream[k][1]]) for k in range(0, 60, 2)]  # 30 labels
    naive = naive_baseline("tfidf-logreg", {}, ["0", "1"], train, texts, feedback, every=10)
    static = static_baseline("tfidf-logreg", {}, ["0", "1"], train, texts)
    assert naive.fits == 4  # version 1, then after labels 10, 20 and 30
    first_refit = feedback[9][0] + 1  # the item after the 10th label arrived
    assert naive.predictions[:first_refit] == static.predictions[:first_refit]
    after = feedback[-1][0] + 1
    fam = get_family("tfidf-logreg")
    last = fam.fit(
        [*(t for t, _ in train), *(t for _, t, _ in feedback)],
        [*(lab for _, lab in train), *(lab for _, _, lab in feedback)],
        label_set=["0", "1"],
        params={},
    )
    assert naive.predictions[after:] == predict_labels(last, texts[after:], ["0", "1"])[0]


def test_the_oracle_refits_on_every_true_label_before_each_block() -> None:
    train, stream = YELP[:200], YELP[200:260]
    texts, labels = [t for t, _ in stream], [lab for _, lab in stream]
    oracle = oracle_baseline("tfidf-logreg", {}, ["0", "1"], train, texts, labels, every=25)
    assert oracle.fits == 3
    fam = get_family("tfidf-logreg")
    second = fam.fit(
        [t for t, _ in train] + texts[:25], [lab for _, lab in train] + labels[:25], label_set=["0", "1"], params={}
    )
    assert oracle.predictions[25:50] == predict_labels(second, texts[25:50], ["0", "1"])[0]


def test_thumbs_imply_the_answer_up_and_the_other_of_two_labels_down() -> None:
    def thumbs(direction: str) -> PlannedFeedback:
        return PlannedFeedback(0, 0, "u", None, direction, True)

    assert implied_label(thumbs("up"), "pos", ["neg", "pos"]) == "pos"
    assert implied_label(thumbs("down"), "pos", ["neg", "pos"]) == "neg"
    assert implied_label(thumbs("down"), "a", ["a", "b", "c"]) is None  # which other label is unknown
    assert implied_label(PlannedFeedback(0, 0, "u", "b", None, False), "a", ["a", "b"]) == "b"


def test_summary_compares_the_loop_with_the_naive_loop_both_ways() -> None:
    n = 110
    truth = ["1"] * n
    served = ["1"] * 100 + ["0"] * 10
    naive = ["1"] * 10 + ["0"] * 40 + ["1"] * 60  # wrong on 40 post-shift items
    summary = summarize(
        _trace(truth, served, [1] * n, []),
        truth,
        truth,
        window=20,
        rejected_versions=set(),
        naive=naive,
        labels=["0", "1"],
    )
    versus = summary["loop_vs_naive"]
    assert summary["post_shift"]["naive"]["accuracy"] == 0.6
    assert (versus["loop_only_right"], versus["naive_only_right"]) == (40, 10)
    assert versus["difference"] == pytest.approx(0.3)
    assert versus["p_loop_better"] == pytest.approx(binomtest(40, 50, 0.5, alternative="greater").pvalue)
    assert versus["p_loop_worse"] > 0.5
    assert "naive" in summary["windows"][0] and "naive" in summary["post_shift_metrics"]
    assert "the gate saved accuracy" in naive_sentence(versus)
    assert "loop_vs_naive" not in summarize(
        _trace(truth, served, [1] * n, []), truth, truth, window=20, rejected_versions=set()
    )


def test_a_promotion_records_items_and_seconds_from_its_triggering_feedback_to_its_first_answer() -> None:
    n = 60
    trace = _trace(["1"] * n, ["1"] * n, [1] * 30 + [2] * 30, [])
    trace.feedback_sent = [5, 12, 20]  # the last before the job (queued at item 22) triggered it
    trace.feedback_time = [trace.times[i] for i in trace.feedback_sent]
    queued = trace.times[22]
    trace.jobs = [
        JobRecord("j", "succeeded", "trigger", queued, queued, queued, {"version": 2, "promoted": True}, None, 2.5)
    ]
    paused = summarize(trace, ["1"] * n, ["1"] * n, window=10, rejected_versions=set(), paused_rate=4.0)
    row = paused["retrains"][0]
    assert (row["first_served_item"], row["items_to_serving"], row["seconds_to_serving"]) == (30, 10, 10.0)
    # in process the stream waited 2.5 s for the fit: at 4 items/s a server would have served 10 more
    assert (row["items_to_serving_with_fit"], row["seconds_to_serving_with_fit"]) == (20, 12.5)
    latency = paused["promotion_latency"]
    assert latency["promotions"] == 1 and latency["median_seconds_with_fit"] == 12.5
    assert latency["first_after_shift"] == {"items": 20, "labels": 2}  # items 10..29; labels sent at 12 and 20
    real_time = summarize(trace, ["1"] * n, ["1"] * n, window=10, rejected_versions=set())["retrains"][0]
    assert (real_time["items_to_serving_with_fit"], real_time["seconds_to_serving_with_fit"]) == (10, 10.0)
