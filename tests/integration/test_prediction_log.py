"""The prediction log in a server: flushed by the event loop, failures handed to the writer thread."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from learnloop.domain import ModelVersion
from learnloop.services import Services
from learnloop.store.repositories import predictions as prediction_repo

CreateModel = Callable[..., ModelVersion]


async def poll(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def logged(services: Services, prediction_id: str) -> bool:
    with services.db.read() as conn:
        return prediction_repo.get_prediction(conn, prediction_id) is not None


def test_a_batch_refused_on_the_event_loop_goes_to_the_writer_thread_and_loses_only_the_bad_row(
    services: Services, make_model: CreateModel
) -> None:
    make_model(services, "m")
    services.ingest.start()

    async def scenario() -> tuple[str, list[str]]:
        services.ingest.attach_event_loop(asyncio.get_running_loop())
        first = services.predictions.predict("m", "Works fine, charges fast.")
        await poll(lambda: logged(services, first.prediction_id), "the first prediction to be logged")
        # The same id again: the database refuses the whole batch this row lands in.
        with services.db.read() as conn:
            found = prediction_repo.get_prediction(conn, first.prediction_id)
        assert found is not None
        stored: dict[str, Any] = {**asdict(found), "answer": json.dumps(found.answer)}
        services.ingest.log_prediction(stored)
        later = [services.predictions.predict("m", f"Review number {i}, quite good.").prediction_id for i in range(20)]
        await poll(lambda: all(logged(services, pid) for pid in later), "the later predictions to be logged")
        await poll(lambda: services.ingest.prediction_backlog == 0, "an empty backlog")
        # Logging goes on from the event loop once the writer thread has recovered.
        after = services.predictions.predict("m", "Back to normal.")
        await poll(lambda: logged(services, after.prediction_id), "a prediction after the recovery")
        services.ingest.detach_event_loop()
        return first.prediction_id, later

    duplicate_id, later = asyncio.run(scenario())
    assert services.ingest.predictions_dead_lettered == 1
    dead = services.settings.home / "dead-letter" / "predictions.jsonl"
    (line,) = dead.read_text().splitlines()
    assert json.loads(line)["id"] == duplicate_id
    with services.db.read() as conn:
        assert prediction_repo.count_predictions(conn, "m") == 1 + len(later) + 1
