"""The prediction log: written by its own thread; a refused row is set aside, the rest logged."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from conftest import wait_for
from learnloop.domain import ModelVersion
from learnloop.services import Services
from learnloop.store.repositories import predictions as prediction_repo

CreateModel = Callable[..., ModelVersion]


def logged(services: Services, prediction_id: str) -> bool:
    with services.db.read() as conn:
        return prediction_repo.get_prediction(conn, prediction_id) is not None


def test_a_refused_row_goes_to_the_dead_letter_file_and_the_rest_of_its_batch_is_logged(
    services: Services, make_model: CreateModel
) -> None:
    make_model(services, "m")
    services.ingest.start()
    first = services.predictions.predict("m", "Works fine, charges fast.")
    wait_for(lambda: logged(services, first.prediction_id), timeout=10, what="the first prediction to be logged")
    # The same id again: the database refuses the whole batch this row lands in.
    with services.db.read() as conn:
        found = prediction_repo.get_prediction(conn, first.prediction_id)
    assert found is not None
    stored: dict[str, Any] = {**asdict(found), "answer": json.dumps(found.answer)}
    services.ingest.log_prediction(stored)
    later = [services.predictions.predict("m", f"Review number {i}, quite good.").prediction_id for i in range(20)]
    wait_for(lambda: all(logged(services, pid) for pid in later), timeout=10, what="the later predictions")
    wait_for(lambda: services.ingest.prediction_backlog == 0, timeout=10, what="an empty backlog")
    after = services.predictions.predict("m", "Back to normal.")
    wait_for(lambda: logged(services, after.prediction_id), timeout=10, what="a prediction after the refusal")

    assert services.ingest.predictions_dead_lettered == 1
    dead = services.settings.home / "dead-letter" / "predictions.jsonl"
    (line,) = dead.read_text().splitlines()
    assert json.loads(line)["id"] == first.prediction_id
    with services.db.read() as conn:
        assert prediction_repo.count_predictions(conn, "m") == 1 + len(later) + 1
