"""Input that passes validation but that a database may refuse must never wedge the service.

Each test states the behaviour a server must have under input a database may refuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from conftest import uci_rows, wait_for
from learnloop.curation import split_golden
from learnloop.domain import FeedbackInput, ModelVersion
from learnloop.errors import LearnloopError, ValidationError
from learnloop.policy import Policy
from learnloop.services import Services
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import predictions as prediction_repo

CreateModel = Callable[..., ModelVersion]

LONE_SURROGATE = "broken \ud800 text"  # valid JSON ("\ud800"), not encodable as UTF-8
NUL = "nul \x00 byte"  # valid JSON ("\u0000"); PostgreSQL text cannot hold it


def snapshot_rows(services: Services, snapshot_hash: str) -> list[dict[str, Any]]:
    snap = services.registry.snapshot(snapshot_hash)
    assert snap is not None
    return [json.loads(line) for line in gzip.decompress(services.store.get_bytes(snap.uri)).splitlines()]


def logged(services: Services, prediction_id: str) -> bool:
    with services.db.read() as conn:
        return prediction_repo.get_prediction(conn, prediction_id) is not None


@pytest.mark.parametrize("text", [LONE_SURROGATE, NUL], ids=["lone-surrogate", "nul"])
def test_a_prediction_the_database_refuses_does_not_block_the_prediction_log(
    services: Services, make_model: CreateModel, text: str
) -> None:
    make_model(services, "m")
    services.ingest.start()
    with contextlib.suppress(ValidationError):  # refusing such text up front is fine
        services.predictions.predict("m", text)
    after = services.predictions.predict("m", "A perfectly ordinary sentence.")
    wait_for(lambda: logged(services, after.prediction_id), timeout=3, what="the next prediction to be logged")
    wait_for(lambda: services.ingest.prediction_backlog == 0, timeout=3, what="an empty prediction backlog")


@pytest.mark.parametrize("text", [LONE_SURROGATE, NUL], ids=["lone-surrogate", "nul"])
def test_feedback_text_the_database_refuses_is_a_clear_error_and_spares_the_rest_of_the_batch(
    services: Services, make_model: CreateModel, text: str
) -> None:
    make_model(services, "m")
    good = FeedbackInput(text="Great value for the money.", label="1", feedback_id="good")
    bad = FeedbackInput(text=text, label="0", feedback_id="bad")
    results = asyncio.run(services.feedback.record_many("m", [good, bad]))
    assert results[0].feedback is not None and results[0].feedback.client_id == "good"
    stored_bad = results[1].feedback
    if stored_bad is None:
        assert isinstance(results[1].error, LearnloopError)
    else:
        assert services.feedback.get("m", "bad").id == stored_bad.id


def test_feedback_metadata_with_nan_is_refused_or_stored(services: Services, make_model: CreateModel) -> None:
    make_model(services, "m")
    try:
        (stored,) = services.feedback.record_sync(
            "m", [FeedbackInput(text="ok phone", label="1", metadata={"x": math.nan})]
        )
    except ValidationError:
        return
    assert stored.metadata is not None and set(stored.metadata) == {"x"}


@pytest.mark.parametrize("spelling", ["upper", "braces", "urn", "hex"])
def test_prediction_id_in_another_uuid_spelling_is_refused_or_joins_its_prediction(
    services: Services, make_model: CreateModel, spelling: str
) -> None:
    make_model(services, "m")
    services.ingest.start()
    prediction = services.predictions.predict("m", "The screen cracked on day one.")
    wait_for(lambda: logged(services, prediction.prediction_id), timeout=5, what="the prediction log")
    pid = prediction.prediction_id
    given = {"upper": pid.upper(), "braces": "{" + pid + "}", "urn": "urn:uuid:" + pid, "hex": pid.replace("-", "")}
    try:
        (fb,) = services.feedback.record_sync("m", [FeedbackInput(prediction_id=given[spelling], label="0")])
    except ValidationError:
        return  # refused clearly: fine
    with services.db.read() as conn:
        rows = feedback_repo.feedback_with_predictions(conn, "m", services.clock.now())
    row = next(r for r in rows if r.id == fb.id)
    assert row.served is not None and row.served.text == "The screen cracked on day one."


def test_feedback_pointing_at_another_models_prediction_does_not_break_its_retrains(
    services: Services, make_model: CreateModel
) -> None:
    make_model(services, "a")  # labels "0"/"1"
    rows = [(text, "pos" if label == "1" else "neg") for text, label in uci_rows("amazon_cells")]
    train, golden = split_golden(rows, 0.2, 0)
    services.registry.create_model(
        name="b", labels=["neg", "pos"], family="tfidf-logreg", params={}, policy=Policy(),
        train=train, golden=golden, source="test",
    )  # fmt: skip
    services.training.bootstrap("b")
    services.ingest.start()
    other = services.predictions.predict("a", "Great food, friendly staff.")
    wait_for(lambda: logged(services, other.prediction_id), timeout=5, what="the prediction log")

    # A client posts to the wrong model's URL.
    services.feedback.record_sync("b", [FeedbackInput(prediction_id=other.prediction_id, thumbs="up")])
    outcome = services.training.retrain("b", actor="test")
    assert outcome.version == 2
    labels = {line["label"] for line in snapshot_rows(services, outcome.snapshot)}
    assert labels <= {"neg", "pos"}
