"""Conflicting feedback through the real retrain: an adversary loses trust and weight in the snapshot."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable

from conftest import uci_rows
from learnloop.domain import FeedbackInput, ModelVersion
from learnloop.feedback.intake import hash_subject
from learnloop.services import Services

CreateModel = Callable[..., ModelVersion]


def test_an_adversary_who_contradicts_everyone_ends_with_low_trust_and_weight_in_the_snapshot(
    services: Services, make_model: CreateModel
) -> None:
    make_model(services, "m")
    rows = uci_rows("amazon_cells")[:12]
    flip = {"0": "1", "1": "0"}
    items = []
    for text, label in rows:  # two honest subjects, then the adversary relabels every text
        items += [
            FeedbackInput(text=text, label=label, subject="alice"),
            FeedbackInput(text=text, label=label, subject="bob"),
            FeedbackInput(text=text, label=flip[label], subject="mallory"),
        ]
    lone_text, lone_label = uci_rows("amazon_cells")[20]
    items.append(FeedbackInput(text=lone_text, label=flip[lone_label], subject="mallory"))
    for item in items:  # one at a time, so the events are in this order
        services.feedback.record_sync("m", [item])

    outcome = services.training.retrain("m", actor="test")
    counts = services.registry.snapshot(outcome.snapshot).counts  # type: ignore[union-attr]
    conflicts = counts["conflicts"]
    mallory = hash_subject("mallory")
    assert conflicts["rule"] == "dawid_skene" and conflicts["contested_items"] == 12
    assert conflicts["overturned_latest"] == 12 and conflicts["low_trust_subjects"] == 1
    assert conflicts["trust"][mallory] < 0.5 < conflicts["trust"][hash_subject("alice")]
    assert counts["train_down_weighted"] >= 1

    snapshot = services.registry.snapshot(outcome.snapshot)
    assert snapshot is not None
    data = gzip.decompress(services.store.get_bytes(snapshot.uri))
    lines = [json.loads(line) for line in data.splitlines()]
    truth = dict(rows)
    trained = {line["text"]: line for line in lines if line["source"] != "bootstrap"}
    assert {text: trained[text]["label"] for text in truth} == truth  # the honest majority's labels
    assert trained[lone_text]["weight"] < 0.7  # the adversary's uncontested label weighs less
    version = services.registry.version("m", outcome.version)
    assert version.metrics["snapshot_counts"]["conflicts"]["trust"][mallory] < 0.5
