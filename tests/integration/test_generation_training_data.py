"""What a generative model's next version would train on, through the registry service, on a
migrated database (SQLite and PostgreSQL). The model, its logged answers and the feedback on them
are written straight to the tables here: the generation intake is tested on its own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import insert

from learnloop.app import create_app
from learnloop.domain import Model, ModelVersion
from learnloop.errors import ValidationError
from learnloop.ids import new_id
from learnloop.policy import Policy
from learnloop.services import Services
from learnloop.store import tables as t
from learnloop.store.repositories import models as model_repo
from learnloop.tasks.generation.answers import GenAnswer, Message


def _generative_model(services: Services, name: str = "npc") -> None:
    now = services.clock.now()
    answers = [(f"pred-{i}", f"prompt {i % 4}", f"answer {i}") for i in range(10)]
    with services.db.write() as conn:
        model_repo.insert_model(
            conn, Model(name, "generation", (), "external", {}, Policy.of(held_out_fraction=0.2), now)
        )
        for i, (pid, prompt, response) in enumerate(answers):
            answer = GenAnswer(response, "stop", source_model="gpt-x", messages=(Message("user", prompt),))
            conn.execute(
                insert(t.predictions).values(
                    id=pid,
                    model=name,
                    version=1,
                    route="champion",
                    text=prompt,
                    answer=orjson.dumps(answer.to_answer()).decode(),
                    subject=None,
                    created_at=now - timedelta(hours=2),
                    latency_ms=1.0,
                )
            )
            payload: dict[str, Any] = {"thumbs": "up"} if i % 3 else {"rating": 2}
            conn.execute(
                insert(t.feedback).values(
                    id=new_id(),
                    model=name,
                    client_id=None,
                    prediction_id=pid,
                    kind="thumbs" if i % 3 else "rating",
                    payload=payload,
                    subject=None,
                    metadata=None,
                    created_at=now - timedelta(minutes=60 - i),
                )
            )


def lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def test_a_generative_models_next_training_data_in_each_part(services: Services) -> None:
    _generative_model(services)
    sft = lines(services.registry.training_data("npc", None, "trl-sft"))
    held = lines(services.registry.training_data("npc", None, "trl-sft", "held_out"))
    kto = lines(services.registry.training_data("npc", None, "trl-kto"))
    # 6 thumbs up (i = 1, 2, 4, 5, 7, 8) are SFT rows, the newest 20% of them held out
    assert [r["messages"][-1]["content"] for r in sft] == ["answer 1", "answer 2", "answer 4", "answer 5", "answer 7"]
    assert [r["messages"][-1]["content"] for r in held] == ["answer 8"]
    assert {r["label"] for r in kto} == {True, False}
    assert all(
        r["messages"][0] == {"role": "user", "content": f"prompt {int(r['messages'][1]['content'][-1]) % 4}"}
        for r in sft
    )


def test_formats_and_parts_are_checked(services: Services, make_model: Callable[..., ModelVersion]) -> None:
    _generative_model(services)
    with pytest.raises(ValidationError, match="generative"):
        services.registry.training_data("npc", None, "csv")
    with pytest.raises(ValidationError, match="part"):
        services.registry.training_data("npc", None, "trl-sft", "everything")
    make_model(services, "m")
    with pytest.raises(ValidationError, match="for generative models"):
        services.registry.training_data("m", None, "trl-dpo")
    with pytest.raises(ValidationError, match="no held-out part"):
        services.registry.training_data("m", None, "jsonl", "held_out")
    assert services.registry.training_data("m", None, "jsonl").count(b"\n") > 100  # the classifier's, unchanged


def test_the_training_data_route_serves_the_next_versions_data(services: Services) -> None:
    _generative_model(services)
    asyncio.run(_route_checks(services))


async def _route_checks(services: Services) -> None:
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=30) as http:
        response = await http.get("/v1/models/npc/training-data", params={"format": "openai-dpo"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/x-ndjson")
        assert 'filename="npc-train-training-data.jsonl"' in response.headers["content-disposition"]
        held = await http.get("/v1/models/npc/training-data", params={"format": "bedrock", "part": "held_out"})
        assert [json.loads(line)["schemaVersion"] for line in held.text.splitlines()] == ["bedrock-conversation-2024"]
        wrong = await http.get("/v1/models/npc/training-data", params={"format": "csv"})
        assert wrong.status_code == 422 and wrong.json()["field"] == "format"
        missing = await http.get("/v1/models/npc/versions/1/training-data", params={"format": "trl-sft"})
        assert missing.status_code == 404
