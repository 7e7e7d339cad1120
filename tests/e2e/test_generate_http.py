"""In-process generation over real HTTP: a server serving a generative model (a tiny Llama built
locally, so no weights are needed) beside a classifier; /generate whole and streamed, the
OpenAI-compatible routes through the official ``openai`` client and learnloop's own Python
client, feedback on the answers, the limits, a client that leaves, and a flood of requests
against the bounded queue."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer, ServerLauncher, create_model, make_settings, wait_for
from learnloop.client import APIError, AsyncClient, Client
from learnloop.models import NewModel
from learnloop.services import build_services
from learnloop.store.repositories import predictions as prediction_repo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, module_server_launcher: ServerLauncher
) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("generate") / "home"
    database_url = f"sqlite:///{home / 'learnloop.db'}"
    services = build_services(make_settings(home, database_url))
    try:
        create_model(services, "m")
        services.creation.create(
            NewModel(
                "npc",
                task="generation",
                params={"base": str(tiny_llama_dir), "system_prompt": "You are a blacksmith."},
                policy={"max_new_tokens": 64, "max_prompt_chars": 2_000},
            ),
            None,
            actor="test",
        )
    finally:
        services.close()
    yield module_server_launcher.start(home, database_url)


def logged_answer(server: LiveServer, prediction_id: str) -> dict[str, object] | None:
    services = build_services(make_settings(server.home, server.database_url), migrate=False)
    try:
        with services.db.read() as conn:
            found = prediction_repo.get_prediction(conn, prediction_id)
        return None if found is None else {"text": found.text, **found.answer}
    finally:
        services.close()


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, object]]]:
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            assert event is not None
            yield event, json.loads(line.removeprefix("data: "))


def test_generate_answers_logs_and_takes_feedback_beside_a_classifier(server: LiveServer) -> None:
    with server.client() as http:
        assert http.get("/health").json()["models"] == {"m": 1, "npc": 1}
        body = {"prompt": "Can you mend my sword?", "max_new_tokens": 12, "temperature": 0, "subject": "u1"}
        first = http.post("/v1/models/npc/generate", json=body)
        assert first.status_code == 200, first.text
        answer = first.json()
        assert (answer["model"], answer["version"], answer["route"]) == ("npc", 1, "champion")
        assert answer["finish_reason"] in ("stop", "length") and 0 < answer["completion_tokens"] <= 12
        assert answer["prompt_tokens"] > 0
        again = http.post("/v1/models/npc/generate", json=body).json()
        assert again["text"] == answer["text"] and again["prediction_id"] != answer["prediction_id"]  # greedy
        seeded = {**body, "temperature": 1.0, "seed": 7}
        assert (
            http.post("/v1/models/npc/generate", json=seeded).json()["text"]
            == http.post("/v1/models/npc/generate", json=seeded).json()["text"]
        )
        assert http.post("/v1/models/m/predict", json={"text": "Great food."}).status_code == 200

        pid = answer["prediction_id"]
        rated = http.post("/v1/models/npc/feedback", json={"prediction_id": pid, "rating": 5, "subject": "u1"})
        assert rated.status_code == 201, rated.text
        fixed = http.post("/v1/models/npc/feedback", json={"prediction_id": pid, "correction": "Aye, leave it here."})
        assert fixed.status_code == 201, fixed.text

    logged = wait_for(lambda: logged_answer(server, pid), timeout=10, what="the answer in the prediction log")
    assert logged["response"] == answer["text"] and logged["finish_reason"] == answer["finish_reason"]
    assert logged["messages"] == [{"role": "user", "content": "Can you mend my sword?"}]
    assert logged["text"] == "Can you mend my sword?"
    assert logged["params"] == {"max_new_tokens": 12, "temperature": 0.0, "top_p": 1.0}


def test_a_streamed_answer_names_its_prediction_first_and_equals_the_whole_one(server: LiveServer) -> None:
    body = {"messages": [{"role": "user", "content": "Hello smith"}], "max_new_tokens": 10, "temperature": 0}
    with server.client() as http:
        whole = http.post("/v1/models/npc/generate", json=body).json()
        with http.stream("POST", "/v1/models/npc/generate", json={**body, "stream": True}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = list(sse_events(response.iter_lines()))
    names = [name for name, _ in events]
    assert names[0] == "prediction" and names[-1] == "done" and set(names[1:-1]) <= {"token"}
    first, done = events[0][1], events[-1][1]
    assert first["prediction_id"] == done["prediction_id"] and (first["model"], first["version"]) == ("npc", 1)
    streamed = "".join(str(data["text"]) for name, data in events if name == "token")
    assert streamed == done["text"] == whole["text"]


def test_limits_and_wrong_tasks_are_clear_4xx(server: LiveServer) -> None:
    with server.client() as http:
        too_many = http.post("/v1/models/npc/generate", json={"prompt": "Hi", "max_new_tokens": 500})
        assert too_many.status_code == 422 and "max_new_tokens" in too_many.json()["detail"]
        assert "64" in too_many.json()["detail"]
        long = http.post("/v1/models/npc/generate", json={"prompt": "x" * 1_000_000})
        assert long.status_code == 422 and "max_prompt_chars" in long.json()["detail"], long.text
        nul = http.post("/v1/models/npc/generate", json={"prompt": "a\u0000b"})
        assert nul.status_code == 422, nul.text
        bad = http.post(
            "/v1/models/npc/generate", content=b'{"prompt": "\xff\xfe"}', headers={"content-type": "application/json"}
        )
        assert 400 <= bad.status_code < 500
        no_prompt = http.post("/v1/models/npc/generate", json={"max_new_tokens": 3})
        assert no_prompt.status_code == 422
        assert http.post("/v1/models/m/generate", json={"prompt": "Hi"}).json()["code"] == "wrong_task"
        assert http.post("/v1/models/npc/predict", json={"text": "Hi"}).json()["code"] == "wrong_task"
        label = http.post("/v1/models/npc/feedback", json={"text": "Hi", "label": "1"})
        assert label.status_code == 422, label.text
        assert http.get("/health").json()["status"] == "ok"


def test_the_official_openai_client_needs_only_the_base_url(server: LiveServer) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{server.url}/openai/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()] == ["npc"]
    messages = [{"role": "user", "content": "Where is the forge?"}]
    completion = client.chat.completions.create(model="npc", messages=messages, max_tokens=8, temperature=0)  # type: ignore[arg-type]
    text = completion.choices[0].message.content
    assert completion.model == "npc" and completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage is not None and 0 < completion.usage.completion_tokens <= 8
    chunks = list(
        client.chat.completions.create(model="npc", messages=messages, max_tokens=8, temperature=0, stream=True)  # type: ignore[arg-type]
    )
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id != completion.id
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="npc", messages=messages, max_tokens=8, n=2)  # type: ignore[arg-type]
    with httpx.Client(base_url=server.url) as http:  # the completion id takes feedback
        thumbs = http.post("/v1/models/npc/feedback", json={"prediction_id": completion.id, "thumbs": "up"})
        assert thumbs.status_code == 201, thumbs.text


def test_a_client_that_leaves_stops_its_generation_and_the_partial_answer_is_logged(server: LiveServer) -> None:
    body = {"prompt": "Tell me a long story", "max_new_tokens": 64, "temperature": 1.0, "seed": 3, "stream": True}
    with server.client() as http, http.stream("POST", "/v1/models/npc/generate", json=body) as response:
        lines = response.iter_lines()
        pid = next(data for name, data in sse_events(lines) if name == "prediction")["prediction_id"]
    logged = wait_for(lambda: logged_answer(server, str(pid)), timeout=30, what="the cancelled answer logged")
    assert logged["finish_reason"] in ("cancelled", "stop", "length")
    with server.client() as http:
        assert http.get("/health").json()["status"] == "ok"


def test_a_flood_of_generate_requests_gets_answers_or_503s_never_a_5xx_or_a_hang(server: LiveServer) -> None:
    async def flood() -> list[int]:
        limits = httpx.Limits(max_connections=500)
        async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as http:

            async def one(i: int) -> int:
                body = {"prompt": f"Question {i}", "max_new_tokens": 8, "temperature": 0}
                return (await http.post("/v1/models/npc/generate", json=body)).status_code

            return list(await asyncio.gather(*(one(i) for i in range(500))))

    statuses = asyncio.run(flood())
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert statuses.count(200) >= 8 and statuses.count(503) > 0
    with server.client() as http:
        assert http.get("/health").json()["status"] == "ok"
        assert (
            http.post("/v1/models/npc/generate", json={"prompt": "Still there?", "max_new_tokens": 4}).status_code
            == 200
        )


# -- the Python client (learnloop.client; the rest of it: tests/e2e/test_client_http.py) ------


def test_the_python_client_generates_from_a_prompt_or_a_conversation_and_rates_the_answer(server: LiveServer) -> None:
    with Client(server.url, timeout=60.0) as client:
        first = client.generate("npc", "Can you mend my sword?", max_new_tokens=8, temperature=0)
        assert (first.model, first.version, first.route) == ("npc", 1, "champion")
        assert 0 < first.completion_tokens <= 8 and first.finish_reason in ("stop", "length")
        again = client.generate("npc", "Can you mend my sword?", max_new_tokens=8, temperature=0)
        assert again.text == first.text and again.prediction_id != first.prediction_id  # greedy
        chat = client.generate(
            "npc", messages=[{"role": "user", "content": "How much for a shield?"}], max_new_tokens=4, seed=3
        )
        assert chat.completion_tokens <= 4
        rated = client.feedback("npc", first.prediction_id, rating=4)
        assert (rated.kind, rated.prediction_id) == ("rating", first.prediction_id)
        with pytest.raises(APIError) as too_long:
            client.generate("npc", "Hi", max_new_tokens=0)
        assert (too_long.value.status, too_long.value.field) == (422, "max_new_tokens")


def test_the_async_python_client_generates_concurrently(server: LiveServer) -> None:
    async def scenario() -> list[str]:
        async with AsyncClient(server.url, timeout=60.0) as client:
            answers = await asyncio.gather(
                *(client.generate("npc", f"Question {i}?", max_new_tokens=4, seed=i) for i in range(3))
            )
            return [a.prediction_id for a in answers]

    assert len(set(asyncio.run(scenario()))) == 3
