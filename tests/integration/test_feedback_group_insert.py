"""The feedback write of a group commit in one statement per batch (``insert_feedback_many``:
``unnest`` arrays on PostgreSQL, multi-row ``INSERT``s on SQLite), and a stream batch through it:
each row is answered with what is stored when rows of one group repeat a client key, repeat a
key stored before, or carry none; values read back as written; on both databases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from learnloop.models import NewModel
from learnloop.services import Services
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.streams.sources import stream_intake


def _row(now: datetime, client_id: str | None, rating: int, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "model": "m",
        "client_id": client_id,
        "prediction_id": str(uuid.uuid4()),
        "kind": "rating",
        "payload": {"rating": rating},
        "subject": None,
        "metadata": metadata,
        "created_at": now,
    }


def test_a_group_larger_than_one_statement_answers_each_row_with_what_is_stored(services: Services) -> None:
    now = services.clock.now()
    before = _row(now, "stored-before", 3)
    with services.db.write() as conn:
        feedback_repo.insert_feedback_many(conn, [before])
    # 1,300 rows: past SQLite's 512 rows a statement; keys on two rows in three, none on the rest.
    rows = [
        _row(now, None if i % 3 == 0 else f"k{i}", 1 + i % 5, {"i": i, "é\u00e9": None} if i % 2 else None)
        for i in range(1300)
    ]
    rows[700] = _row(now, "k1", 5)  # row 1's key, from another request of the same group
    rows[1299] = _row(now, "stored-before", 4)  # a key stored by an earlier commit

    with services.db.write() as conn:
        stored = feedback_repo.insert_feedback_many(conn, rows)

    expected = [r["id"] for r in rows]
    expected[700], expected[1299] = rows[1]["id"], before["id"]
    assert [fb.id for fb in stored] == expected
    assert stored[1299].payload == {"rating": 3}  # the first event stays
    with services.db.read() as conn:
        kept = {e.feedback.id: e.feedback for e in feedback_repo.recent_feedback(conn, "m", 5000)}
    assert len(kept) == 1 + 1300 - 2
    for i in (0, 1, 511, 512, 1023, 1024, 1298):
        fb = kept[rows[i]["id"]]
        assert (fb.client_id, fb.payload, fb.metadata, fb.created_at) == (
            rows[i]["client_id"],
            rows[i]["payload"],
            rows[i]["metadata"],
            now,
        )


def test_a_stream_batch_mixing_kinds_with_an_id_twice_stores_each_event_once(
    services_factory: Callable[..., Services],
) -> None:
    services = services_factory(prediction_log="durable")  # as a consumer runs: answers logged before the ack
    services.start(worker=False)
    services.creation.create(NewModel("npc", task="generation", backend="external"), None, actor="test")
    services.cache.refresh()
    answer = str(uuid.uuid4())

    def message(kind: str, event: dict[str, Any], id_: str | None = None) -> bytes:
        return orjson.dumps({"id": id_ or str(uuid.uuid4()), "type": kind, "model": "npc", "event": event})

    twice = message("feedback", {"prediction_id": answer, "rating": 5}, "fb-twice")
    batch = [
        message("feedback", {"prediction_id": answer.upper(), "thumbs": "up"}),  # before its answer: kept
        message("generation", {"prompt": "Where is the inn?", "response": "Down the road."}, answer),
        twice,
        message("feedback", {"prompt": "Hi?", "chosen": "Well met!", "rejected": "What."}),
        twice,  # the same event again inside the batch: stored once, not dead-lettered
        message("feedback", {"prediction_id": answer, "rating": 9}),  # refused by intake
        message("feedback", {"prediction_id": answer, "rating": 4}, "fb-twice"),  # the key, another event
        message("feedback", {"prediction_id": answer, "signal": "copied", "value": True}),
    ]
    intake = stream_intake(services)

    outcomes = asyncio.run(intake.handle(batch))
    refused = {i: o.code for i, o in enumerate(outcomes) if o is not None}
    assert refused == {5: "validation_error", 6: "duplicate_in_batch"}
    counts = services.registry.overview("npc").feedback_counts
    assert counts == {"thumbs": 1, "rating": 1, "preference": 1, "implicit": 1}
    assert services.ingest.logged_prediction_ids([answer]) == {answer}

    again = asyncio.run(intake.handle(batch))  # the whole batch redelivered
    assert {i: o.code for i, o in enumerate(again) if o is not None} == {5: "validation_error", 6: "duplicate_in_batch"}
    assert services.registry.overview("npc").feedback_counts == counts
