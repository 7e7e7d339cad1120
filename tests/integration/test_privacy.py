"""Personal data is scrubbed from stored text, per model policy (real database, real model)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from learnloop.domain import FeedbackInput, ModelVersion
from learnloop.errors import ValidationError
from learnloop.policy import Policy
from learnloop.services import Services
from learnloop.store.repositories import predictions as prediction_repo

CreateModel = Callable[..., ModelVersion]
PERSONAL = "Mr. John Smith says: great phone, write to john.smith@example.com or call +1 415 555 2671."


def stored_prediction_text(services: Services, prediction_id: str) -> str:
    services.ingest.flush()
    with services.db.read() as conn:
        row = prediction_repo.get_prediction(conn, prediction_id)
    assert row is not None
    return row.text


def test_prediction_and_feedback_text_is_stored_scrubbed_by_default(
    services: Services, make_model: CreateModel
) -> None:
    make_model(services, "m")
    answer = services.predictions.predict("m", PERSONAL)
    raw = services.predictions.predict("m", PERSONAL.replace("john.smith@example.com", "us"))
    stored = stored_prediction_text(services, answer.prediction_id)
    assert stored == "Mr. <NAME> says: great phone, write to <EMAIL> or call <PHONE>."
    assert answer.label == raw.label  # the model answered the text as sent
    (example,) = services.feedback.record_sync("m", [FeedbackInput(text=PERSONAL, label="1")])
    assert example.text == stored
    (batch,) = services.predictions.predict_many("m", [PERSONAL])
    assert stored_prediction_text(services, batch.prediction_id) == stored


def test_a_model_can_keep_text_as_sent_or_choose_kinds(services: Services, make_model: CreateModel) -> None:
    make_model(services, "m", policy=Policy.of(pii_scrub=""))
    answer = services.predictions.predict("m", PERSONAL)
    assert stored_prediction_text(services, answer.prediction_id) == PERSONAL
    services.registry.update_policy("m", {"pii_scrub": "email"}, "test")  # serving picks it up at once
    answer = services.predictions.predict("m", PERSONAL)
    assert stored_prediction_text(services, answer.prediction_id) == PERSONAL.replace(
        "john.smith@example.com", "<EMAIL>"
    )
    with pytest.raises(ValidationError) as err:
        services.registry.update_policy("m", {"pii_scrub": "email,ssn"}, "test")
    assert err.value.field == "policy.pii_scrub"


def test_training_data_exports_what_the_version_saw_scrubbed_as_jsonl_and_csv(
    services: Services, make_model: CreateModel
) -> None:
    import csv
    import io
    import json

    make_model(services, "m", policy=Policy.of(min_recent_examples=1))
    services.feedback.record_sync("m", [FeedbackInput(text=PERSONAL, label="1")])
    outcome = services.training.retrain("m", actor="test")
    lines = (
        services.registry.training_data("m", outcome.version, "jsonl").decode().split("\n")[:-1]
    )  # not splitlines: U+2028
    rows = [json.loads(line) for line in lines]
    snapshot = services.registry.snapshot(outcome.snapshot)
    assert snapshot is not None and len(rows) == snapshot.counts["train"]
    (from_feedback,) = [r for r in rows if r["source"] == "feedback:example"]
    assert from_feedback["text"] == "Mr. <NAME> says: great phone, write to <EMAIL> or call <PHONE>."
    assert from_feedback["label"] == "1" and from_feedback["feedback_id"]
    table = list(csv.DictReader(io.StringIO(services.registry.training_data("m", outcome.version, "csv").decode())))
    assert [r["text"] for r in table] == [r["text"] for r in rows]
    assert services.registry.training_data("m", None, "jsonl").count(b"\n") >= len(rows) - 1  # the champion's
    with pytest.raises(ValidationError):
        services.registry.training_data("m", outcome.version, "xlsx")


def test_a_subject_is_exported_then_erased_from_predictions_feedback_and_snapshots(
    services: Services, make_model: CreateModel
) -> None:
    import gzip
    import json

    from conftest import uci_rows

    make_model(services, "m", policy=Policy.of(min_recent_examples=1))
    rows = uci_rows("amazon_cells")
    for i, (text, label) in enumerate(rows[:60]):
        subject = "alice" if i % 3 == 0 else "bob"
        answer = services.predictions.predict("m", text, subject)
        services.feedback.record_sync(
            "m", [FeedbackInput(prediction_id=answer.prediction_id, label=label, subject=subject)]
        )
    services.feedback.record_sync(
        "m", [FeedbackInput(text="Alice's own example sentence.", label="1", subject="alice")]
    )
    services.ingest.flush()
    outcome = services.training.retrain("m", actor="test")
    if not outcome.promoted:
        services.registry.promote("m", outcome.version, actor="test", force=True)

    exported = services.privacy.export("alice")
    assert len(exported["predictions"]) == 20 and len(exported["feedback"]) == 21
    assert "alice" not in json.dumps(exported)  # only the hash is stored

    report = services.privacy.erase("alice", actor="tester", reason="user asked")
    assert (report.predictions, report.feedback) == (20, 21)
    assert report.snapshot_rows == 21 and report.snapshots == [outcome.snapshot]
    assert report.versions == {"m": [outcome.version]}
    job_id = report.retrains["m"]
    assert job_id is not None and services.jobs.get(job_id).requested_by == "privacy:erasure"

    after = services.privacy.export("alice")
    assert after["predictions"] == [] and after["feedback"] == []
    assert len(services.privacy.export("bob")["predictions"]) == 40  # nobody else is touched
    snap = services.registry.snapshot(outcome.snapshot)
    assert snap is not None and snap.counts["erasures"][0]["rows"] == 21
    stored = [json.loads(line) for line in gzip.decompress(services.store.get_bytes(snap.uri)).splitlines()]
    assert len([r for r in stored if r["source"].startswith("feedback")]) == 40
    assert "Alice's own example sentence." not in {r["text"] for r in stored}
    assert services.registry.version("m", outcome.version).erasures
    (event,) = services.registry.events("m", 5, kinds=["subject_erased"])
    assert event.actor == "tester" and event.data["versions_trained_on_it"] == [outcome.version]
    assert "alice" not in json.dumps(event.data)
    # Erasing again finds nothing left.
    again = services.privacy.erase("alice", actor="tester")
    assert (again.predictions, again.feedback, again.snapshot_rows) == (0, 0, 0)
