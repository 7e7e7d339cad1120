"""A generative model whose answers are made elsewhere, through the app (HTTPX's ASGI
transport) on a migrated SQLite file and PostgreSQL: created without data, its answers logged,
every kind of feedback on them taken or refused with a clear 4xx, preferences joined with
their rejected answer, even one logged after the preference."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from learnloop.app import create_app
from learnloop.domain import FeedbackKind, ModelVersion
from learnloop.errors import NotSupportedError
from learnloop.services import Services
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import predictions as prediction_repo
from learnloop.tasks import get_task

NPC = "/v1/models/npc"
MAIL = "jane.doe@example.com"

Factory = Callable[..., Services]
CreateModel = Callable[..., ModelVersion]


@pytest.fixture
def served(services_factory: Factory, make_model: CreateModel) -> Services:
    """Services (buffered prediction log, no writer thread: rows wait for ``drain``) with a
    classifier "m" and an external generative model "npc"."""
    services = services_factory()
    services.cache.serve()  # as an API replica does at start (the ASGI transport runs no lifespan)
    make_model(services, "m")
    return services


@asynccontextmanager
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=30) as http:
        yield http


def run(services: Services, scenario: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with client(services) as http:
            await scenario(http)

    asyncio.run(main())


def problem(response: httpx.Response, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    if field is not None:
        assert body["field"] == field, body
    return body


async def create_npc(http: httpx.AsyncClient, name: str = "npc", **extra: Any) -> dict[str, Any]:
    body = {"name": name, "task": "generation", "backend": "external", **extra}
    response = await http.post("/v1/models", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def log(http: httpx.AsyncClient, prompt: str, response: str, model: str = "npc", **extra: Any) -> str:
    body = {"prompt": prompt, "response": response, "source_model": "claude-sonnet", **extra}
    answer = await http.post(f"/v1/models/{model}/generations", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["prediction_id"])


def logged(services: Services, prediction_id: str) -> Any:
    services.ingest.predictions.drain()
    with services.db.read() as conn:
        return prediction_repo.get_prediction(conn, prediction_id)


# -- creation and serving ----------------------------------------------------------------------


def test_an_external_generative_model_is_created_without_data_and_the_server_stays_healthy(served: Services) -> None:
    async def scenario(http: httpx.AsyncClient) -> None:
        created = await create_npc(http, system_prompt="You are a blacksmith in a fantasy village.")
        assert (created["task"], created["labels"], created["champion_version"]) == ("generation", [], 1)
        version = (await http.get(f"{NPC}/versions/1")).json()
        assert (version["family"], version["status"]) == ("external", "champion")
        assert version["params"] == {"system_prompt": "You are a blacksmith in a fantasy village."}
        served.cache.refresh()  # what a server does at start: load every model's route
        health = (await http.get("/health")).json()
        # (the database watch is not started here, so "status" says the database is unknown)
        assert (health["models"], health["unavailable"]) == ({"m": 1, "npc": 1}, {}), health
        refused = problem(await http.post(f"{NPC}/predict", json={"text": "Hello?"}), 422, "wrong_task")
        assert "POST /v1/models/npc/generations" in refused["detail"]
        assert (await http.post("/v1/models/m/predict", json={"text": "Great food."})).status_code == 200
        problem(
            await http.post("/v1/models", json={"name": "npc", "task": "generation", "backend": "external"}),
            409,
            "conflict",
        )
        local = await http.post("/v1/models", json={"name": "npc2", "task": "generation", "params": {"base": "gpt-17"}})
        assert "unknown base" in problem(local, 422, "validation_error")["detail"]
        problem(await http.post("/v1/models", json={"name": "c2"}), 422, "validation_error", "rows")

    run(served, scenario)
    served.cache.refresh()
    assert served.readiness().checks["models"] == "ok"


def test_retraining_a_model_answered_elsewhere_is_refused_clearly(served: Services) -> None:
    run(served, create_npc)
    with pytest.raises(NotSupportedError, match="cannot fit its weights"):
        served.training.retrain("npc", actor="test")
    with pytest.raises(NotSupportedError, match="export its training data"):
        served.jobs.enqueue("npc", "retrain", requested_by="test")


# -- logging generations -------------------------------------------------------------------------


def test_generations_are_logged_scrubbed_and_batched(served: Services) -> None:
    ids: dict[str, str] = {}

    async def scenario(http: httpx.AsyncClient) -> None:
        await create_npc(http)
        ids["one"] = await log(
            http,
            f"My mail is {MAIL}, what's the weather?",
            f"I will write to {MAIL}.",
            usage={"prompt_tokens": 12, "completion_tokens": 7},
            latency_ms=321.5,
            finish_reason="stop",
            subject="player-1",
            metadata={"scene": "forge"},
        )
        conversation = {
            "messages": [
                {"role": "system", "content": "You are a blacksmith."},
                {"role": "user", "content": "Can you fix my sword?"},
            ],
            "response": "Aye, give it here.",
            "source_model": "gpt-4o",
        }
        batch = await http.post(
            f"{NPC}/generations/batch",
            json={
                "items": [
                    conversation,
                    {"prompt": "Hi", "response": "x", "source_model": "a\x00b"},
                    {"response": "no prompt"},
                ]
            },
        )
        assert batch.status_code == 200, batch.text
        result = batch.json()
        assert (result["logged"], result["rejected"]) == (1, 2)
        assert [item["status"] for item in result["items"]] == ["logged", "rejected", "rejected"]
        assert result["items"][1]["error"]["field"] == "items.1.source_model"
        ids["conversation"] = result["items"][0]["prediction_id"]

    run(served, scenario)
    one = logged(served, ids["one"])
    assert MAIL not in one.text and MAIL not in str(one.answer)
    assert one.answer["response"].startswith("I will write to")
    assert (one.answer["prompt_tokens"], one.answer["completion_tokens"]) == (12, 7)
    assert (one.answer["source_model"], one.answer["finish_reason"], one.latency_ms) == ("claude-sonnet", "stop", 321.5)
    assert one.answer["metadata"] == {"scene": "forge"}
    assert one.subject is not None and one.subject != "player-1"
    assert (one.version, one.route) == (1, "champion")
    conversation = logged(served, ids["conversation"])
    assert conversation.text == "system: You are a blacksmith.\nuser: Can you fix my sword?"
    assert conversation.answer["messages"][1] == {"role": "user", "content": "Can you fix my sword?"}


def test_bad_generations_are_refused_naming_the_field(served: Services) -> None:
    async def scenario(http: httpx.AsyncClient) -> None:
        await create_npc(http, policy={"max_prompt_chars": 50})
        post = lambda body: http.post(f"{NPC}/generations", json=body)  # noqa: E731
        long = problem(await post({"prompt": "x" * 51, "response": "ok"}), 422, "validation_error", "prompt")
        assert "max_prompt_chars" in long["detail"] and "50" in long["detail"]
        problem(await post({"prompt": "a\x00b", "response": "ok"}), 422, "validation_error", "prompt")
        megabyte = problem(await post({"prompt": "x" * 1_000_000, "response": "ok"}), 422, "validation_error", "prompt")
        assert "max_prompt_chars" in megabyte["detail"]
        turns = [{"role": "user", "content": "y" * 30}, {"role": "assistant", "content": "z" * 30}]
        problem(await post({"messages": turns, "response": "ok"}), 422, "validation_error", "messages")
        control = await post({"prompt": "bell \x07 and tab \t", "response": "line\r\nbreak \x1b[31m"})
        assert control.status_code == 201, control.text  # control characters are text; only NUL is refused
        raw = lambda body: http.post(f"{NPC}/generations", content=body, headers={"content-type": "application/json"})  # noqa: E731
        problem(await raw(b'{"prompt": "hi", "response": "\\ud800"}'), 422, "validation_error", "response")
        problem(await raw(b'{"prompt": "hi", "response": "\xff\xfe"}'), 422, "validation_error", "body")  # not UTF-8
        problem(
            await post({"prompt": "hi", "messages": [{"role": "user", "content": "hi"}], "response": "ok"}),
            422,
            "validation_error",
        )
        problem(
            await post({"messages": [{"role": "system", "content": "be kind"}], "response": "ok"}),
            422,
            "validation_error",
        )
        problem(await post({"messages": [{"role": "tool", "content": "x"}], "response": "ok"}), 422, "validation_error")
        problem(await post({"prompt": "hi", "response": "ok", "usage": {"prompt_tokens": -1}}), 422, "validation_error")
        wrong_task = await http.post("/v1/models/m/generations", json={"prompt": "hi", "response": "ok"})
        assert "classification model" in problem(wrong_task, 422, "validation_error", "model")["detail"]
        problem(
            await http.post("/v1/models/nope/generations", json={"prompt": "hi", "response": "ok"}), 404, "not_found"
        )

    run(served, scenario)


# -- feedback on generations ---------------------------------------------------------------------


def test_every_feedback_kind_on_a_generation_is_stored(served: Services) -> None:
    async def scenario(http: httpx.AsyncClient) -> None:
        await create_npc(http)
        a = await log(http, "Where is the inn?", "Down the road.")
        b = await log(http, "Where is the inn?", "I cannot say.", source_model="gpt-4o")
        logged(served, a)
        events = [
            ({"prediction_id": a, "rating": 5}, {"rating": 5}),
            ({"prediction_id": a, "thumbs": "up"}, {"thumbs": "up"}),
            ({"prediction_id": b, "correction": f"The inn is by the well; ask {MAIL}."}, None),
            ({"prediction_id": a, "signal": "copied", "value": True}, {"signal": "copied", "value": True}),
            ({"prediction_id": a, "signal": "dwell_ms", "value": 5300}, {"signal": "dwell_ms", "value": 5300.0}),
            (
                {"chosen_prediction_id": a, "rejected_prediction_id": b, "strength": 0.8},
                {"chosen_prediction_id": a, "rejected_prediction_id": b, "strength": 0.8, "prediction_id": a},
            ),
            (
                {"prompt": "Hello?", "chosen": "Well met!", "rejected": "Go away."},
                {"prompt": "Hello?", "chosen": "Well met!", "rejected": "Go away.", "strength": 1.0},
            ),
        ]
        for body, shown in events:
            response = await http.post(f"{NPC}/feedback", json=body)
            assert response.status_code == 201, response.text
            stored = response.json()
            for key, value in (shown or {}).items():
                assert stored[key] == value, (key, stored)
        correction = next(e for e in served.feedback.recent("npc") if e.kind == FeedbackKind.CORRECTION)
        assert MAIL not in correction.feedback.payload["correction"]
        assert correction.feedback.payload["correction"].startswith("The inn is by the well")
        page = await http.get("/dashboard/models/npc")
        assert page.status_code == 200, page.text
        assert "The inn is by the well" in page.text  # the correction, beside the answer it corrects
        assert "0.80" in page.text  # the preference's strength, in the recent preferences
        assert "copied = True" in page.text

    run(served, scenario)
    counts = {e.kind.value for e in served.feedback.recent("npc")}
    assert counts == {"rating", "thumbs", "correction", "implicit", "preference"}
    npc = get_task("generation").training_feedback(served.registry.get_model("npc"))
    with served.db.read() as conn:  # the retrain trigger counts training signal, not unmapped implicit signals
        assert feedback_repo.count_training_feedback_since(conn, "npc", None, 100, npc.kinds, npc.signals) == 5


def test_bad_feedback_on_generations_is_refused_clearly(served: Services) -> None:
    async def scenario(http: httpx.AsyncClient) -> None:
        await create_npc(http)
        await create_npc(http, "other")
        a = await log(http, "Where is the inn?", "Down the road.")
        b = await log(http, "Where is the smithy?", "Up the hill.")
        c = await log(http, "Where is the inn?", "By the well.", model="other")
        classified = (await http.post("/v1/models/m/predict", json={"text": "Great food."})).json()["prediction_id"]
        logged(served, a)
        fb = lambda body, model="npc": http.post(f"/v1/models/{model}/feedback", json=body)  # noqa: E731
        across_prompts = problem(
            await fb({"chosen_prediction_id": a, "rejected_prediction_id": b}),
            422,
            "validation_error",
            "rejected_prediction_id",
        )
        assert "different prompts" in across_prompts["detail"]
        across_models = problem(
            await fb({"chosen_prediction_id": a, "rejected_prediction_id": c}),
            422,
            "validation_error",
            "rejected_prediction_id",
        )
        assert "'other'" in across_models["detail"]
        problem(await fb({"chosen_prediction_id": a, "rejected_prediction_id": a}), 422, "validation_error")
        problem(await fb({"prediction_id": a, "rating": 6}), 422, "validation_error", "rating")
        problem(await fb({"prediction_id": a, "rating": 0}), 422, "validation_error", "rating")
        wrong = problem(await fb({"prediction_id": classified, "correction": "Bad."}, "m"), 422, "validation_error")
        assert wrong["detail"].startswith("a classification model takes")
        problem(await fb({"chosen_prediction_id": a, "rejected_prediction_id": b}, "m"), 422, "validation_error")
        label = problem(await fb({"prediction_id": a, "label": "1"}), 422, "validation_error", "label")
        assert "generative model takes" in label["detail"]
        problem(await fb({"text": "Nice.", "label": "1"}), 422, "validation_error", "example")
        unknown = problem(
            await fb({"prediction_id": a, "signal": "shared", "value": 1}), 422, "validation_error", "signal"
        )
        assert "'shared'" in unknown["detail"]
        for strength in (1.5, -0.5, "high"):
            problem(
                await fb({"chosen_prediction_id": a, "rejected_prediction_id": b, "strength": strength}),
                422,
                "validation_error",
                "strength",
            )
        problem(await fb({"prediction_id": a, "signal": "copied"}), 422, "validation_error", "value")
        batch = await http.post(
            f"{NPC}/feedback/batch",
            json={
                "items": [
                    {"prediction_id": a, "thumbs": "up"},
                    {"chosen_prediction_id": a, "rejected_prediction_id": b},
                ]
            },
        )
        items = batch.json()["items"]
        assert [i["status"] for i in items] == ["stored", "rejected"]
        assert items[1]["error"]["field"] == "items.1.rejected_prediction_id"

    run(served, scenario)


def test_a_feedback_id_names_one_event_of_the_new_kinds(served: Services) -> None:
    async def scenario(http: httpx.AsyncClient) -> None:
        await create_npc(http)
        a = await log(http, "Where is the inn?", "Down the road.")
        b = await log(http, "Where is the inn?", "Nowhere.")
        logged(served, a)
        tag = uuid.uuid4().hex
        bodies = [
            {"prediction_id": a, "correction": "By the well.", "feedback_id": f"{tag}-c"},
            {"chosen_prediction_id": a, "rejected_prediction_id": b, "feedback_id": f"{tag}-p"},
            {"prompt": "Hi", "chosen": "Hello!", "rejected": "Bye.", "feedback_id": f"{tag}-s"},
            {"prediction_id": a, "signal": "regenerated", "value": 1, "feedback_id": f"{tag}-i"},
        ]
        for body in bodies:
            first, again = [await http.post(f"{NPC}/feedback", json=body) for _ in range(2)]
            assert first.status_code == again.status_code == 201, again.text
            assert first.json() == again.json()
        changed = {**bodies[0], "correction": "By the fountain."}
        problem(await http.post(f"{NPC}/feedback", json=changed), 409, "idempotency_conflict")

    run(served, scenario)
    assert len(served.feedback.recent("npc")) == 4


def test_a_preference_whose_rejected_answer_is_logged_later_is_kept_and_joined(served: Services) -> None:
    ids: dict[str, str] = {}

    async def scenario(http: httpx.AsyncClient) -> None:
        await create_npc(http)
        ids["a"] = await log(http, "Where is the inn?", "Down the road.")
        logged(served, ids["a"])
        ids["b"] = await log(http, "Where is the inn?", "I cannot say.")  # buffered: not in the log yet
        ids["c"] = str(uuid.uuid4())  # never logged
        pref = await http.post(
            f"{NPC}/feedback", json={"chosen_prediction_id": ids["a"], "rejected_prediction_id": ids["b"]}
        )
        assert pref.status_code == 201, pref.text
        early = await http.post(f"{NPC}/feedback", json={"prediction_id": ids["c"], "correction": "Somewhere."})
        assert early.status_code == 201, early.text

    run(served, scenario)
    (pending,) = [e for e in served.feedback.recent("npc") if e.kind == FeedbackKind.PREFERENCE]
    assert pending.served is not None and pending.served.prediction_id == ids["a"]
    assert pending.related is None
    served.ingest.predictions.drain()
    (joined,) = [e for e in served.feedback.recent("npc") if e.kind == FeedbackKind.PREFERENCE]
    assert joined.related is not None and joined.related.prediction_id == ids["b"]
    assert joined.related.answer["response"] == "I cannot say."
    with served.db.read() as conn:
        everything = feedback_repo.feedback_with_predictions(conn, "npc", served.clock.now())
    assert {e.kind for e in everything} == {FeedbackKind.PREFERENCE, FeedbackKind.CORRECTION}
    assert [e.related is not None for e in everything if e.kind == FeedbackKind.PREFERENCE] == [True]
    assert [e.served for e in everything if e.kind == FeedbackKind.CORRECTION] == [None]  # kept, joined later
    rule = get_task("generation").outcomes(served.registry.get_model("npc"))
    assert {e.prediction_id: rule.outcome(e) for e in rule.deciding(everything)} == {
        ids["a"]: True,
        ids["b"]: False,
    }


# -- implicit signals on a classifier ---------------------------------------------------------


def test_an_implicit_signal_on_a_classifier_is_stored_and_ignored_by_its_retrain(served: Services) -> None:
    ids: list[str] = []

    async def scenario(http: httpx.AsyncClient) -> None:
        for text in ("Great food, friendly staff.", "Cold fries and a rude waiter."):
            ids.append((await http.post("/v1/models/m/predict", json={"text": text})).json()["prediction_id"])
        served.ingest.predictions.drain()
        for pid in ids:
            response = await http.post(
                "/v1/models/m/feedback", json={"prediction_id": pid, "signal": "copied", "value": True}
            )
            assert response.status_code == 201, response.text
            assert (response.json()["kind"], response.json()["signal"], response.json()["value"]) == (
                "implicit",
                "copied",
                True,
            )
        thumbs = await http.post("/v1/models/m/feedback", json={"prediction_id": ids[0], "thumbs": "up"})
        assert thumbs.status_code == 201

    run(served, scenario)
    outcome = served.training.retrain("m", actor="test")
    snapshot = served.registry.version("m", outcome.version).snapshot_hash
    assert snapshot is not None
    counts = served.registry.overview("m").feedback_counts
    assert counts == {"implicit": 2, "thumbs": 1}
    m = get_task("classification").training_feedback(served.registry.get_model("m"))
    with served.db.read() as conn:
        assert feedback_repo.count_training_feedback_since(conn, "m", None, 100, m.kinds, m.signals) == 1
    stored = served.registry.snapshot(snapshot)
    assert stored is not None
    feedback = stored.counts["feedback"]
    assert (feedback["events.implicit"], feedback["ignored_kind"], feedback["examples"]) == (2, 2, 1)


def test_the_openapi_document_shows_the_generation_routes_and_feedback_fields(served: Services) -> None:
    async def scenario(http: httpx.AsyncClient) -> None:
        doc = (await http.get("/openapi.json")).json()
        assert {"/v1/models/{model}/generations", "/v1/models/{model}/generations/batch"} <= set(doc["paths"])
        schemas = doc["components"]["schemas"]
        shown = set(schemas["FeedbackPublic"]["properties"])
        assert {"correction", "chosen_prediction_id", "rejected_prediction_id", "strength", "signal", "value"} <= shown
        assert {"prompt", "messages", "response", "source_model", "usage"} <= set(
            schemas["GenerationCreate"]["properties"]
        )
        refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(doc))
        assert refs and set(refs) <= set(schemas)

    run(served, scenario)


def test_a_durable_log_answers_once_the_generation_is_committed_and_big_batches_are_checked(
    services_factory: Factory,
) -> None:
    services = services_factory(prediction_log="durable")
    ids: list[str] = []

    async def scenario(http: httpx.AsyncClient) -> None:
        await create_npc(http)
        ids.append(await log(http, "Where is the inn?", "Down the road."))
        with services.db.read() as conn:  # committed before the answer: no drain needed
            assert prediction_repo.get_prediction(conn, ids[0]) is not None
        items = [{"prompt": f"Question {i}?", "response": f"Answer {i}."} for i in range(40)]
        items[7] = {"prompt": "x" * 9_000, "response": "too long a prompt"}
        batch = (await http.post(f"{NPC}/generations/batch", json={"items": items})).json()
        assert (batch["logged"], batch["rejected"]) == (39, 1)
        assert batch["items"][7]["error"]["field"] == "items.7.prompt"
        ids.extend(item["prediction_id"] for item in batch["items"] if item["status"] == "logged")
        too_many = [{"prompt": "q", "response": "a"}] * (services.settings.limits.max_batch_items + 1)
        problem(await http.post(f"{NPC}/generations/batch", json={"items": too_many}), 422, "validation_error", "items")

    run(services, scenario)
    with services.db.read() as conn:
        assert len(prediction_repo.predictions_by_id(conn, ids, "npc")) == 40
        assert prediction_repo.predictions_by_id(conn, ids, "m") == {}
