"""The edge pushes back and bad input never costs memory or poisons a row (issue 19, sections 3
and 5): the app through HTTPX's ASGI transport, on a migrated SQLite file and PostgreSQL.

No timing is asserted: a slow request is one whose body has not arrived yet, held open by the
test itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from conftest import register_version, uci_rows
from held_passes import hold_every_load
from learnloop.app import create_app
from learnloop.config import Admission, Limits, PredictionBatch, RouteLimit
from learnloop.curation import split_golden
from learnloop.domain import ModelVersion
from learnloop.errors import NotFoundError, OverloadedError
from learnloop.feedback.intake import hash_subject
from learnloop.routing.split import in_share
from learnloop.services import Services
from learnloop.store.repositories import feedback as feedback_repo

M = "/v1/models/m"
HUGE = str(2**64)
CAP = 64 * 1024

Factory = Callable[..., Services]
CreateModel = Callable[..., ModelVersion]


@pytest.fixture
def served(services_factory: Factory, make_model: CreateModel) -> Services:
    """Services with model "m" and a small body cap (64 KiB)."""
    services = services_factory(limits=Limits(max_body_bytes=CAP, body_seconds=0.3))
    make_model(services, "m")
    return services


@asynccontextmanager
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions (the default): a 500 anywhere fails the test with its traceback.
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=30) as http:
        yield http


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code), body
    return body


def raw_json(http: httpx.AsyncClient, method: str, path: str, text: bytes) -> Any:
    return http.request(method, path, content=text, headers={"content-type": "application/json"})


# -- bodies: size and depth ------------------------------------------------------------------


def test_an_oversized_body_is_413_before_it_is_read_or_parsed(served: Services) -> None:
    async def scenario() -> None:
        async with client(served) as http:
            declared = await http.post(f"{M}/predict", content=b"{" + b" " * CAP + b"}")
            assert problem(declared, 413, "payload_too_large")["limit"] == CAP

            async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
                for _ in range(100):
                    yield b" " * 4096

            streamed = await http.post(f"{M}/feedback/batch", content=chunks())
            problem(streamed, 413, "payload_too_large")
            fine = await http.post(f"{M}/predict", json={"text": "x" * 10_000})
            assert fine.status_code == 200, fine.text

    asyncio.run(scenario())
    assert _refused(served, "predict", "too_large") == 1
    assert _refused(served, "feedback", "too_large") == 1


def test_a_body_that_never_finishes_arriving_is_408(served: Services) -> None:
    async def scenario() -> None:
        async def stalls() -> AsyncIterator[bytes]:
            yield b'{"text": "starts'
            await asyncio.sleep(3600)
            yield b'"}'  # pragma: no cover - never reached: the server stops reading first

        async with client(served) as http:
            problem(await http.post(f"{M}/predict", content=stalls()), 408, "request_timeout")

    asyncio.run(scenario())


@pytest.mark.parametrize("path", [f"{M}/predict", f"{M}/feedback", f"{M}/feedback/batch", f"{M}/policy"])
def test_json_nested_deeper_than_the_cap_is_422_before_it_is_parsed(served: Services, path: str) -> None:
    deep: Any = "x"
    for _ in range(33):
        deep = {"k": deep}

    async def scenario() -> None:
        async with client(served) as http:
            method = "PATCH" if path.endswith("policy") else "POST"
            for text in (json.dumps({"text": deep}).encode(), b"[" * 60_000):
                body = problem(await raw_json(http, method, path, text), 422, "validation_error")
                assert body["field"] == "body" and "32" in body["detail"]

    asyncio.run(scenario())


# -- metadata nested deep: refused at intake, and readable when already stored -----------------


def test_deep_metadata_is_refused_at_intake(served: Services) -> None:
    metadata: Any = 1
    for _ in range(9):  # one level past max_metadata_depth (8)
        metadata = {"m": metadata}

    async def scenario() -> None:
        async with client(served) as http:
            event = {"text": "Fine phone.", "label": "1", "metadata": metadata, "feedback_id": "deep-meta"}
            body = problem(await http.post(f"{M}/feedback", json=event), 422, "validation_error")
            assert body["field"] == "metadata" and "8 levels" in body["detail"]
            batch = await http.post(f"{M}/feedback/batch", json={"items": [event]})
            assert batch.json()["items"][0]["error"]["field"] == "items.0.metadata"
            problem(await http.get(f"{M}/feedback/deep-meta"), 404, "not_found")  # nothing stored

    asyncio.run(scenario())


def test_deep_metadata_stored_before_the_limit_reads_back_without_a_500(served: Services) -> None:
    """Rows an earlier learnloop stored (300 levels: past what Pydantic serializes) are read
    back, exported and curated, with the metadata as text."""
    metadata: Any = "bottom"
    for _ in range(300):
        metadata = {"m": metadata}
    row = {
        "id": "01900000-0000-7000-8000-000000000001",
        "model": "m",
        "client_id": "stored-deep",
        "prediction_id": None,
        "kind": "example",
        "payload": {"text": "Stored long ago.", "label": "1"},
        "subject": hash_subject("dana"),
        "metadata": metadata,
        "created_at": served.clock.now(),
    }
    with served.db.write() as conn:
        feedback_repo.insert_feedback_many(conn, [row])

    async def scenario() -> None:
        async with client(served) as http:
            event = await http.get(f"{M}/feedback/stored-deep")
            assert event.status_code == 200, event.text
            stand_in = event.json()["metadata"]
            assert json.loads(stand_in["json"]) == metadata and "deeper than" in stand_in["unreadable"]
            export = await http.get("/v1/subjects/dana/export")
            assert export.status_code == 200, export.text
            assert [f["metadata"] for f in export.json()["feedback"]] == [stand_in]

    asyncio.run(scenario())
    with served.db.read() as conn:  # what curation reads for a retrain
        (curated,) = feedback_repo.feedback_with_predictions(conn, "m", served.clock.now())
    assert curated.feedback.metadata is not None
    assert json.loads(curated.feedback.metadata["json"]) == metadata


# -- numbers: 64-bit integers, finite floats ----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", f"{M}/versions/{HUGE}", "version"),
        ("GET", f"{M}/versions/{HUGE}/training-data", "version"),
        ("POST", f"{M}/versions/{HUGE}/promote", "version"),
        ("GET", f"{M}/rollouts/{HUGE}", "rollout_id"),
        ("POST", f"{M}/rollouts/{HUGE}/pause", "rollout_id"),
        ("GET", f"{M}/events?after_id={HUGE}", "after_id"),
        ("GET", f"{M}/events?limit=-{HUGE}", "limit"),
        ("GET", f"/v1/jobs?limit={HUGE}", "limit"),
        ("GET", f"/v1/webhooks/{HUGE}/deliveries", "webhook_id"),
        ("DELETE", f"/v1/webhooks/{HUGE}", "webhook_id"),
        ("GET", f"/dashboard/models/m/versions/{HUGE}", "number"),
    ],
)
def test_integers_beyond_64_bits_in_paths_and_queries_are_422(
    served: Services, method: str, path: str, field: str
) -> None:
    async def scenario() -> None:
        async with client(served) as http:
            assert problem(await http.request(method, path), 422, "validation_error")["field"] == field

    asyncio.run(scenario())


def test_a_rollout_of_a_version_beyond_64_bits_is_422(served: Services) -> None:
    async def scenario() -> None:
        async with client(served) as http:
            for body in ({"version": 2**64}, {"version": 1, "strategy": "ab", "baseline": 2**70}):
                response = await http.post(f"{M}/rollouts", json=body)
                assert problem(response, 422, "validation_error")["field"] in ("version", "baseline")

    asyncio.run(scenario())


@pytest.mark.parametrize("value", [b"Infinity", b"-Infinity", b"NaN", b"1e999"])
def test_infinity_or_nan_in_a_policy_float_is_422_and_nothing_changes(served: Services, value: bytes) -> None:
    async def scenario() -> None:
        async with client(served) as http:
            before = (await http.get(M)).json()["policy"]
            for name in (b"cooldown_seconds", b"canary_margin", b"feedback_weight"):
                text = b'{"changes": {"' + name + b'": ' + value + b"}}"
                body = problem(await raw_json(http, "PATCH", f"{M}/policy", text), 422, "validation_error")
                assert body["field"] == f"policy.{name.decode()}" and "finite" in body["detail"]
            assert (await http.get(M)).json()["policy"] == before
            rollout = b'{"version": 1, "settings": {"canary_step_seconds": ' + value + b"}}"
            problem(await raw_json(http, "POST", f"{M}/rollouts", rollout), 422, "validation_error")

    asyncio.run(scenario())


# -- idempotency keys ---------------------------------------------------------------------------


def test_a_key_reused_for_a_different_event_is_409_and_a_retry_is_the_first_event(served: Services) -> None:
    event = {"text": "Battery is great.", "label": "1", "feedback_id": "key-1", "metadata": {"app": [1, 2.5]}}

    async def scenario() -> None:
        async with client(served) as http:
            first = await http.post(f"{M}/feedback", json=event)
            assert first.status_code == 201, first.text
            retry = await http.post(f"{M}/feedback", json=event)
            assert retry.status_code == 201 and retry.json() == first.json()
            for change in ({"label": "0"}, {"text": "Battery is poor."}, {"metadata": {"app": [1]}}, {"subject": "x"}):
                body = problem(await http.post(f"{M}/feedback", json={**event, **change}), 409, "idempotency_conflict")
                assert body["feedback_id"] == "key-1" and body["field"] == "feedback_id"
                assert body["existing_feedback_id"] == first.json()["feedback_id"] and "'key-1'" in body["detail"]
            assert (await http.get(f"{M}/feedback/key-1")).json() == first.json()  # the first event stays

    asyncio.run(scenario())
    assert _counted(served, "learnloop_feedback_rejected_total", model="m", code="idempotency_conflict") == 4


def test_concurrent_requests_with_one_key_and_different_events_store_one(served: Services) -> None:
    served.ingest.start()  # one group commit may hold both

    async def scenario() -> list[int]:
        async with client(served) as http:
            answers = await asyncio.gather(
                *(
                    http.post(f"{M}/feedback", json={"text": "Race.", "label": label, "feedback_id": "race"})
                    for label in ("0", "1")
                )
            )
            return sorted(a.status_code for a in answers)

    assert asyncio.run(scenario()) == [201, 409]


def test_a_key_repeated_inside_a_batch_is_flagged_per_item(served: Services) -> None:
    """The first item with a key is stored (or, for a key stored before, answered as a retry
    or refused as a conflict); a later item with the same key is refused: duplicate_in_batch."""
    earlier = [
        {"text": "Before.", "label": "1", "feedback_id": "b-0"},
        {"text": "Also.", "label": "1", "feedback_id": "b-9"},
    ]
    items = [
        {"text": "One.", "label": "1", "feedback_id": "b-1"},
        {"text": "One.", "label": "1", "feedback_id": "b-1"},  # the same event again
        {"text": "Two.", "label": "0", "feedback_id": "b-1"},  # another event, same key
        earlier[0],  # a retry of an event stored before
        {**earlier[1], "label": "0"},  # another event under a key stored before
        {"text": "Three.", "label": "0"},  # no key: never a repeat
        {"text": "Three.", "label": "0"},
    ]

    async def scenario() -> tuple[list[str], dict[str, Any]]:
        async with client(served) as http:
            ids = [(await http.post(f"{M}/feedback", json=event)).json()["feedback_id"] for event in earlier]
            response = await http.post(f"{M}/feedback/batch", json={"items": items})
            assert response.status_code == 200, response.text
            assert (await http.get(f"{M}/feedback/b-1")).json()["text"] == "One."
            assert (await http.get(f"{M}/feedback/b-9")).json()["label"] == "1"
            return ids, response.json()

    ids, result = asyncio.run(scenario())
    outcomes = [(i["status"], i["error"]["code"] if i["error"] else None) for i in result["items"]]
    assert outcomes == [
        ("stored", None),
        ("rejected", "duplicate_in_batch"),
        ("rejected", "duplicate_in_batch"),
        ("stored", None),
        ("rejected", "idempotency_conflict"),
        ("stored", None),
        ("stored", None),
    ]
    assert (result["stored"], result["rejected"]) == (4, 3)
    errors = [i["error"] for i in result["items"]]
    assert "repeats item 0" in errors[1]["detail"] and "same event" in errors[1]["detail"]
    assert "different event" in errors[2]["detail"] and errors[2]["field"] == "items.2.feedback_id"
    assert result["items"][3]["feedback_id"] == ids[0]  # the retry answers the first event
    assert errors[4]["field"] == "items.4.feedback_id" and ids[1] in errors[4]["detail"]


# -- admission control ------------------------------------------------------------------------


def test_a_class_at_its_bound_answers_503_with_retry_after_while_health_answers(
    services_factory: Factory, make_model: CreateModel
) -> None:
    one = RouteLimit(concurrency=1, queue=0, queue_seconds=1.0)
    services = services_factory(limits=Limits(admission=Admission(feedback=one, predict=one)))
    make_model(services, "m")

    async def scenario() -> None:
        release = asyncio.Event()
        reading = asyncio.Event()

        async def slow_body() -> AsyncIterator[bytes]:
            yield b'{"text": "A slow client", '
            reading.set()
            await release.wait()
            yield b'"label": "1", "feedback_id": "slow"}'

        async with client(services) as http:
            slow = asyncio.ensure_future(
                http.post(f"{M}/feedback", content=slow_body(), headers={"content-type": "application/json"})
            )
            await reading.wait()  # the slow request holds the class's only slot
            refused = await http.post(f"{M}/feedback", json={"text": "Second.", "label": "0"})
            body = problem(refused, 503, "overloaded")
            assert refused.headers["retry-after"] == "1" and body["route_class"] == "feedback"
            assert (await http.get("/health")).status_code == 200
            assert (await http.get("/metrics")).status_code == 200
            assert (await http.post(f"{M}/predict", json={"text": "Other classes go on."})).status_code == 200
            release.set()
            assert (await slow).status_code == 201
            again = await http.post(f"{M}/feedback", json={"text": "Third.", "label": "0"})
            assert again.status_code == 201, again.text  # the slot was given back

    asyncio.run(scenario())
    assert _refused(services, "feedback", "full") == 1


def test_bodies_held_at_once_are_bounded_and_beyond_it_is_503(
    services_factory: Factory, make_model: CreateModel
) -> None:
    kib = 1024
    services = services_factory(limits=Limits(max_body_bytes=96 * kib, max_body_bytes_in_flight=100 * kib))
    make_model(services, "m")
    padded = b'{"text": "' + b"x" * 9000 + b'"}' + b" " * (30 * kib)  # 39 KiB, a valid prediction

    async def scenario() -> None:
        release = asyncio.Event()
        reading = asyncio.Event()

        async def slow_batch() -> AsyncIterator[bytes]:
            yield b'{"items": [' + b" " * (80 * kib)
            reading.set()
            await release.wait()
            yield b'{"text": "Held a while.", "label": "1"}]}'

        async with client(services) as http:
            held = asyncio.ensure_future(
                http.post(f"{M}/feedback/batch", content=slow_batch(), headers={"content-type": "application/json"})
            )
            await reading.wait()  # 80 KiB held of the 100 KiB all requests may hold
            refused = await raw_json(http, "POST", f"{M}/predict", padded)
            assert problem(refused, 503, "overloaded")["reason"] == "memory"
            assert refused.headers["retry-after"] == "1"
            release.set()
            assert (await held).json()["stored"] == 1
            assert (await raw_json(http, "POST", f"{M}/predict", padded)).status_code == 200  # given back

    asyncio.run(scenario())
    assert _refused(services, "predict", "memory") == 1


def test_a_client_gone_before_its_turn_gets_no_work_done(served: Services) -> None:
    """Driven as the ASGI server does: the client is gone by the time the app reads."""
    app = create_app(services=served)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    body = json.dumps({"text": "Nobody waits for this.", "label": "1", "feedback_id": "gone"}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"{M}/feedback",
        "raw_path": f"{M}/feedback".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))
    assert sent == []
    with served.db.read() as conn, pytest.raises(NotFoundError):
        feedback_repo.get_feedback(conn, "m", "gone")
    assert _refused(served, "feedback", "disconnected") == 1


def test_a_batching_model_pushes_back_from_its_batcher_with_503_and_retry_after(
    services_factory: Factory, make_model: CreateModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model's predictions skip the loop-lag rule (every version batches); the batcher's
    line bounds them: one pass held, one text waiting (the bound), the next one refused."""
    holds = hold_every_load(monkeypatch)
    services = services_factory(limits=Limits(prediction_batch=PredictionBatch(max_waiting=1)))
    make_model(services, "m")
    assert not services.cache.batches("m")  # not loaded yet: its first request loads it
    services.cache.route("m")
    assert services.cache.batches("m")

    async def scenario() -> None:
        async with client(services) as http:

            def ask(text: str) -> asyncio.Future[httpx.Response]:
                return asyncio.ensure_future(http.post(f"{M}/predict", json={"text": text}))

            holds.hold()
            first = ask("Held in its pass.")
            await asyncio.to_thread(holds.wait_started)
            second = ask("Waits for the next pass.")
            await _one_waiting(services)
            refused = await http.post(f"{M}/predict", json={"text": "One too many."})
            body = problem(refused, 503, "overloaded")
            assert refused.headers["retry-after"] == "1" and "waiting for the model" in body["detail"]
            assert (await http.get("/health")).status_code == 200
            holds.release()
            assert (await first).status_code == 200 and (await second).status_code == 200
            again = await http.post(f"{M}/predict", json={"text": "Room again."})
            assert again.status_code == 200, again.text

    asyncio.run(scenario())
    assert services.predictions.batcher.refused == 1
    assert ["One too many."] not in holds.passes


def test_a_full_batcher_is_no_failure_of_a_canary(
    services_factory: Factory, make_model: CreateModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A canary's request refused by a full batcher is answered 503: not handed to the champion
    as a fallback, which the rollout's error guardrail would count against the canary."""
    holds = hold_every_load(monkeypatch)
    services = services_factory(limits=Limits(prediction_batch=PredictionBatch(max_waiting=1)))
    make_model(services, "m")
    train, _ = split_golden(uci_rows("yelp"), 0.2, 0)
    v2 = register_version(services, "m", train[:200], note="a challenger")
    rollout = services.rollouts.start("m", v2.version, "canary", actor="test")
    services.cache.route("m")
    assert services.cache.batches("m")
    share = services.cache.route("m").rollout.share  # type: ignore[union-attr]
    canary_subject = next(f"u{i}" for i in range(1000) if in_share(rollout.id, f"u{i}", share))
    # the first two go to the champion by their subject: an anonymous request is split by its
    # random prediction id, and one sent to the canary would start its own held pass
    champion_subject = next(f"u{i}" for i in range(1000) if not in_share(rollout.id, f"u{i}", share))
    predictions = services.predictions

    async def scenario() -> None:
        holds.hold()
        first = asyncio.ensure_future(predictions.predict_async("m", "Held in its pass.", subject=champion_subject))
        await asyncio.to_thread(holds.wait_started)
        second = asyncio.ensure_future(predictions.predict_async("m", "Waits.", subject=champion_subject))
        await _one_waiting(services)
        with pytest.raises(OverloadedError):
            await predictions.predict_async("m", "Refused, not a fallback.", subject=canary_subject)
        holds.release()
        await asyncio.gather(first, second)
        answered = await predictions.predict_async("m", "Served by the canary.", subject=canary_subject)
        assert answered.route == "canary"

    asyncio.run(scenario())
    assert _counted(services, "learnloop_canary_fallbacks_total", model="m") == 0


# -- helpers ----------------------------------------------------------------------------------


async def _one_waiting(services: Services) -> None:
    """Until a text waits in the batcher's line behind the held pass (bounded: a test that
    routed it elsewhere fails here rather than at the suite's timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30.0
    while services.predictions.batcher.waiting < 1:
        assert loop.time() < deadline, "no text came to wait behind the held pass"
        await asyncio.sleep(0.001)


def _counted(services: Services, name: str, **labels: str) -> float:
    value = services.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _refused(services: Services, route_class: str, reason: str) -> float:
    return _counted(services, "learnloop_http_refused_total", route_class=route_class, reason=reason)
