"""Conflicting feedback: Dawid-Skene resolution with subject trust, the noise filter, disagreement."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import numpy as np
import orjson
import pytest

from feedback_events import feedback_event
from learnloop.domain import FeedbackEvent
from learnloop.errors import ValidationError
from learnloop.policy import Policy
from learnloop.tasks.classification import LabelledExample, build_snapshot, derive_examples
from learnloop.tasks.classification.noise import FloatArray, filter_label_noise
from learnloop.tasks.classification.resolve import curate_feedback, disagreement, resolve_feedback
from learnloop.tasks.classification.retrain import weights as _weights

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BINARY = ("neg", "pos")
_ids = count()


def vote(
    subject: str | None,
    label: str,
    *,
    at: float,
    text: str,
    prediction: str | None = None,
    predicted: str = "pos",
    version: int = 1,
    **extra: Any,
) -> FeedbackEvent:
    """A label event on a prediction of ``text`` (``prediction`` defaults to one per text)."""
    return feedback_event(
        {
            "id": f"f{next(_ids):06d}",
            "kind": "label",
            "label": label,
            "thumbs": None,
            "rating": None,
            "text": None,
            "subject": subject,
            "created_at": T0 + timedelta(seconds=at),
            "prediction_id": prediction or f"p-{text}",
            "prediction_text": text,
            "predicted_label": predicted,
            "prediction_version": version,
            **extra,
        }
    )


def texts(n: int) -> list[str]:
    words = ["apple", "river", "stone", "cloud", "ember", "frost", "grove", "harbor", "island", "jungle"]
    return [f"{words[i % 10]} {words[(i // 10) % 10]} review number {i} about {words[(i * 7) % 10]}" for i in range(n)]


def adversarial_rows(n: int = 12) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Two honest subjects label ``n`` texts truthfully; then ``mallory`` relabels every one wrongly."""
    truth = {t: BINARY[i % 2] for i, t in enumerate(texts(n))}
    rows = []
    for i, (t, label) in enumerate(truth.items()):
        rows.append(vote("alice", label, at=10 * i, text=t))
        rows.append(vote("bob", label, at=10 * i + 1, text=t, prediction=f"q-{t}"))
        rows.append(vote("mallory", "neg" if label == "pos" else "pos", at=10 * i + 2, text=t))
    return rows, truth


def test_dawid_skene_overrules_an_adversary_who_relabels_last_where_latest_wins_does_not() -> None:
    rows, truth = adversarial_rows()
    latest = resolve_feedback(rows, BINARY, rule="latest", dedup_threshold=0.85)
    assert all(ex.label != truth[ex.text] for ex in latest.examples)  # the adversary's label, every time
    ds = resolve_feedback(rows, BINARY, rule="dawid_skene", dedup_threshold=0.85)
    assert {ex.text: ex.label for ex in ds.examples} == truth
    assert ds.counts["contested_items"] == 12 and ds.counts["overturned_latest"] == 12
    assert all(ex.weight > 0.95 for ex in ds.examples)  # two trusted voters against one: near certain


def test_trust_drops_for_a_subject_who_keeps_contradicting_consensus_and_their_lone_votes_weigh_less() -> None:
    rows, _ = adversarial_rows()
    rows.append(vote("mallory", "pos", at=500, text="a text only mallory labelled, quite unlike the others"))
    rows.append(vote("alice", "neg", at=501, text="a text only alice labelled, nothing like the rest"))
    rows.append(vote("carol", "neg", at=502, text="a text carol labelled and nobody else ever saw"))
    ds = resolve_feedback(rows, BINARY, rule="dawid_skene", dedup_threshold=0.85)
    assert ds.trust["mallory"] < 0.5 < ds.trust["alice"]
    assert ds.counts["low_trust_subjects"] == 1
    assert next(iter(ds.counts["trust"])) == "mallory"  # lowest first
    weight = {ex.subject: ex.weight for ex in ds.examples if "only" in ex.text or "carol" in ex.text}
    assert weight["mallory"] < 0.7 and weight["alice"] == 1.0
    assert weight["carol"] == 1.0  # never contradicted: weighs 1 as under latest-wins
    assert ds.counts["down_weighted"] == 1


def test_a_split_between_two_unknown_voters_goes_to_the_latest_at_reduced_weight() -> None:
    rows = [vote("u1", "pos", at=1, text="so-so phone"), vote("u2", "neg", at=2, text="so-so phone", prediction="x")]
    (ex,) = resolve_feedback(rows, BINARY, rule="dawid_skene", dedup_threshold=0.85).examples
    assert ex.label == "neg" and ex.weight < 0.7


def test_without_conflicts_dawid_skene_gives_what_latest_wins_gives_at_weight_1() -> None:
    rng = np.random.default_rng(3)
    rows = [
        vote(f"user-{rng.integers(30)}" if i % 5 else None, BINARY[int(rng.integers(2))], at=i, text=t)
        for i, t in enumerate(texts(60))
    ]
    # the same subject's thumbs on a prediction they labelled: their label stands, as under latest-wins
    rows.append(vote(rows[4].feedback.subject, "pos", at=100, text=texts(60)[4], kind="thumbs", thumbs="down"))
    latest, _ = derive_examples(rows, BINARY)
    ds = resolve_feedback(rows, BINARY, rule="dawid_skene", dedup_threshold=0.85)
    assert [(ex.text, ex.label, ex.feedback_id, ex.weight) for ex in ds.examples] == [
        (ex.text, ex.label, ex.feedback_id, 1.0) for ex in latest
    ]


def test_policy_defaults_resolve_by_dawid_skene_and_leave_the_noise_filter_off() -> None:
    policy = Policy()
    assert (policy.curation.conflict_resolution, policy.curation.noise_filter, policy.curation.noise_folds) == (
        "dawid_skene",
        "off",
        5,
    )
    with pytest.raises(ValidationError):
        Policy.of(noise_filter="drop")
    with pytest.raises(ValidationError):
        Policy.of(conflict_resolution="loudest")


def snapshot_of(feedback: list[LabelledExample]) -> Any:
    return build_snapshot(
        bootstrap=[("good", "pos"), ("bad", "neg")],
        feedback=feedback,
        golden_texts=[],
        champion_cutoff=None,
        cutoff=None,
        policy=Policy(),
    )


def test_weights_flow_into_the_snapshot_rows_its_hash_and_the_training_weights() -> None:
    plain = [LabelledExample(t, "pos", "feedback:label", T0 + timedelta(seconds=i)) for i, t in enumerate(texts(3))]
    weighted = [plain[0], replace(plain[1], weight=0.25), plain[2]]
    one, two = snapshot_of(plain), snapshot_of(weighted)
    assert one.hash != two.hash
    rows = [orjson.loads(line) for line in gzip.decompress(two.to_jsonl_gz()).splitlines()]
    assert [r.get("weight") for r in rows] == [None, None, None, 0.25, None]  # unweighted rows carry no key
    assert two.counts["train_down_weighted"] == 1
    assert _weights(one, 1.0) is None
    assert _weights(two, 2.0) == [1.0, 1.0, 2.0, 0.5, 2.0]  # bootstrap rows weigh 1, feedback feedback_weight x weight


class TableModel:
    """A stand-in fitted model that knows the true labels: 0.9 on the truth."""

    def __init__(self, truth: dict[str, str]) -> None:
        self.truth = truth
        self.labels = BINARY

    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        return np.array([[0.9, 0.1] if self.truth[t] == "neg" else [0.1, 0.9] for t in texts])


def noisy_feedback(n: int = 40, flipped: int = 4) -> tuple[list[LabelledExample], set[str], dict[str, str]]:
    truth = {t: BINARY[i % 2] for i, t in enumerate(texts(n))}
    wrong = set(list(truth)[:flipped])
    examples = [
        LabelledExample(t, ("pos" if lab == "neg" else "neg") if t in wrong else lab, "feedback:label", feedback_id=t)
        for t, lab in truth.items()
    ]
    return examples, {ex.feedback_id or "" for ex in examples if ex.text in wrong}, truth


@pytest.mark.parametrize(("mode", "factor"), [("hold", 0.0), ("down_weight", pytest.approx(0.1))])
def test_the_noise_filter_holds_or_down_weights_flagged_feedback_and_records_each_decision(
    mode: str, factor: Any
) -> None:
    examples, wrong, truth = noisy_feedback()
    fits: list[int] = []

    def fit(texts: Sequence[str], labels: Sequence[str], *, seed: int) -> TableModel:
        fits.append(len(texts))
        assert {"good", "bad"} <= set(texts)  # every fold fits on the bootstrap rows too
        return TableModel({**truth, "good": "pos", "bad": "neg"})

    kept, report = filter_label_noise(
        examples, mode=mode, bootstrap=[("good", "pos"), ("bad", "neg")], label_set=BINARY, fit=fit, folds=4
    )
    assert len(fits) == 4 and len(kept) == len(examples)
    assert {ex.feedback_id for ex in kept if ex.weight < 1} == wrong
    assert all(ex.weight == factor for ex in kept if ex.feedback_id in wrong)
    assert report["flagged"] == 4 and report[{"hold": "held", "down_weight": "down_weighted"}[mode]] == 4
    assert {d["feedback_id"] for d in report["decisions"]} == wrong
    assert {d["action"] for d in report["decisions"]} == {mode}


def test_the_noise_filter_off_fits_nothing_and_too_little_feedback_is_skipped() -> None:
    examples, _, _ = noisy_feedback()

    def fit(texts: Sequence[str], labels: Sequence[str], *, seed: int) -> TableModel:
        raise AssertionError("no fit when the filter is off")

    assert filter_label_noise(examples, mode="off", bootstrap=[], label_set=BINARY, fit=fit) == (
        examples,
        {"mode": "off"},
    )
    one = [LabelledExample("lonely", "pos", "feedback:label")]
    kept, report = filter_label_noise(one, mode="hold", bootstrap=[], label_set=BINARY, fit=fit)
    assert kept == one and "skipped" in report


def test_disagreement_is_the_share_of_feedback_contradicting_the_served_answer_per_version() -> None:
    rows = [
        vote("a", "pos", at=1, text="t1", predicted="pos", version=1),
        vote("a", "neg", at=2, text="t2", predicted="pos", version=1),
        vote("b", "neg", at=3, text="t3", predicted="pos", version=2),
        vote("b", "pos", at=4, text="t4", predicted="pos", version=2, kind="thumbs", thumbs="up"),
    ]
    assert disagreement(rows, BINARY) == {
        "1": {"feedback": 2, "contradicting": 1, "share": 0.5},
        "2": {"feedback": 2, "contradicting": 1, "share": 0.5},
    }
    report = curate_feedback(rows, BINARY, Policy().curation, bootstrap=[], fit=None)  # type: ignore[arg-type]
    assert report.counts["disagreement"]["1"]["share"] == 0.5
    assert report.counts["conflicts"]["rule"] == "dawid_skene" and report.counts["noise"] == {"mode": "off"}
