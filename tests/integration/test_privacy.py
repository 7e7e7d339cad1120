"""Personal data is scrubbed from stored text, per model policy (real database, real model)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from learnloop.domain import ModelVersion, Policy
from learnloop.errors import ValidationError
from learnloop.feedback.intake import FeedbackInput
from learnloop.services import Services
from learnloop.store import repositories as repo

CreateModel = Callable[..., ModelVersion]
PERSONAL = "Mr. John Smith says: great phone, write to john.smith@example.com or call +1 415 555 2671."


def stored_prediction_text(services: Services, prediction_id: str) -> str:
    services.ingest.flush()
    with services.db.read() as conn:
        row = repo.get_prediction(conn, prediction_id)
    assert row is not None
    return str(row["text"])


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
    make_model(services, "m", policy=Policy(pii_scrub=""))
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

    make_model(services, "m", policy=Policy(min_recent_examples=1))
    services.feedback.record_sync("m", [FeedbackInput(text=PERSONAL, label="1")])
    outcome = services.training.retrain("m", actor="test")
    lines = (
        services.registry.training_data("m", outcome.version, "jsonl").decode().split("\n")[:-1]
    )  # not splitlines: U+2028
    rows = [json.loads(line) for line in lines]
    snapshot = services.registry.snapshot(outcome.snapshot)
    assert snapshot is not None and len(rows) == snapshot["counts"]["train"]
    (from_feedback,) = [r for r in rows if r["source"] == "feedback:example"]
    assert from_feedback["text"] == "Mr. <NAME> says: great phone, write to <EMAIL> or call <PHONE>."
    assert from_feedback["label"] == "1" and from_feedback["feedback_id"]
    table = list(csv.DictReader(io.StringIO(services.registry.training_data("m", outcome.version, "csv").decode())))
    assert [r["text"] for r in table] == [r["text"] for r in rows]
    assert services.registry.training_data("m", None, "jsonl").count(b"\n") >= len(rows) - 1  # the champion's
    with pytest.raises(ValidationError):
        services.registry.training_data("m", outcome.version, "xlsx")
