"""The prediction log: written by its own thread; a refused row is set aside, the rest logged."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import pytest

from conftest import fresh_postgres_database, predictions_locked, wait_for
from learnloop.config import Limits
from learnloop.domain import ModelVersion
from learnloop.errors import OverloadedError
from learnloop.services import Services
from learnloop.store.db import Database
from learnloop.store.migrate import upgrade
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


def test_a_full_prediction_log_answers_overloaded_and_writes_every_row_it_took(
    services_factory: Callable[..., Services], make_model: CreateModel
) -> None:
    services = services_factory(limits=Limits(prediction_queue_max=5))
    make_model(services, "m")
    taken = [services.predictions.predict("m", f"Sentence {i}, fine.").prediction_id for i in range(5)]
    with pytest.raises(OverloadedError) as refused:  # nothing drains it: no writer thread runs
        services.predictions.predict("m", "One too many.")
    assert refused.value.retry_after >= 1 and services.ingest.prediction_backlog == 5
    services.ingest.flush()
    assert all(logged(services, pid) for pid in taken)
    assert services.predictions.predict("m", "Room again.").prediction_id


def test_a_durable_prediction_is_answered_only_once_its_row_is_committed(
    services_factory: Callable[..., Services], make_model: CreateModel
) -> None:
    services = services_factory(prediction_log="durable")
    make_model(services, "m")
    services.ingest.start()
    for i in range(20):
        answer = services.predictions.predict("m", f"Review {i}: it does the job.")
        assert logged(services, answer.prediction_id)  # read back at once, on another connection
    batch = services.predictions.predict_many("m", [f"Batch review {i}." for i in range(30)])
    assert all(logged(services, r.prediction_id) for r in batch)


def test_a_stop_while_the_database_is_locked_ends_and_dead_letters_what_it_could_not_write(
    services_factory: Callable[..., Services], make_model: CreateModel, database_url: str
) -> None:
    services = services_factory(statement_timeout_seconds=1.0, shutdown_timeout_seconds=3.0)
    make_model(services, "m")
    services.start(worker=False)
    with predictions_locked(database_url):
        answered = [services.predictions.predict("m", f"Locked out {i}.").prediction_id for i in range(25)]
        services.close()  # within its bound: the writer gives up on the lock, the rest is set aside
        with pytest.raises(OverloadedError):
            services.predictions.predict("m", "After the stop.")
    dead = services.settings.home / "dead-letter" / "predictions.jsonl"
    lines = [json.loads(line) for line in dead.read_text().splitlines()]
    assert {row["id"] for row in lines} == set(answered)
    assert all("stopped" in row["error"] for row in lines)


@pytest.mark.postgres
def test_bulk_writes_refresh_postgres_statistics_as_a_table_doubles() -> None:
    with fresh_postgres_database() as url:
        db = Database(url)
        try:
            upgrade(db)

            def analyzed() -> int:
                with db.read() as conn:
                    q = "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'predictions'"
                    return int(conn.exec_driver_sql(q).scalar_one())

            before = analyzed()
            db.note_written("predictions", 9_999)
            assert analyzed() == before  # below the first threshold
            db.note_written("predictions", 1)
            wait_for(lambda: analyzed() == before + 1, timeout=10, what="ANALYZE to be counted")
            db.note_written("predictions", 9_000)  # the next one waits for 10,000 more
            db.note_written("predictions", 1_000)
            wait_for(lambda: analyzed() == before + 2, timeout=10, what="the second ANALYZE")
        finally:
            db.dispose()
