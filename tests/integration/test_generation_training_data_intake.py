"""What an external generative model would train on, from feedback taken through the app:
logged answers, every kind of feedback, the training data in each trainer's format (SQLite and
PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from test_generation_intake import create_npc, log, logged, run, served  # noqa: F401  (the fixture too)

from learnloop.services import Services

NPC = "/v1/models/npc"


def lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def test_feedback_taken_through_the_app_becomes_training_data(served: Services) -> None:  # noqa: F811
    async def scenario(http: httpx.AsyncClient) -> None:
        await create_npc(http)
        kind = await log(http, "Where is the inn?", "Down the road, by the well.")
        curt = await log(http, "Where is the inn?", "Go away.", source_model="gpt-4o")
        cut = await log(http, "Tell me a story", "Once upon a", finish_reason="length")
        logged(served, cut)
        for body in (
            {"prediction_id": kind, "rating": 5},
            {"prediction_id": curt, "rating": 1},
            {"prediction_id": curt, "correction": "The inn is down the road, traveller."},
            {"prediction_id": cut, "thumbs": "up"},
            {"chosen_prediction_id": kind, "rejected_prediction_id": curt, "strength": 0.9},
            {"prompt": "Hello?", "chosen": "Well met!", "rejected": "Hmph."},
        ):
            response = await http.post(f"{NPC}/feedback", json=body)
            assert response.status_code == 201, response.text
        sft = lines(await http.get(f"{NPC}/training-data", params={"format": "trl-sft", "part": "train"}))
        sft += lines(await http.get(f"{NPC}/training-data", params={"format": "trl-sft", "part": "held_out"}))
        answers = {r["messages"][-1]["content"] for r in sft}
        assert answers == {"Down the road, by the well.", "The inn is down the road, traveller."}  # not the cut one
        pairs = lines(await http.get(f"{NPC}/training-data", params={"format": "openai-dpo"}))
        pairs += lines(await http.get(f"{NPC}/training-data", params={"format": "openai-dpo", "part": "held_out"}))
        chosen = {(p["preferred_output"][0]["content"], p["non_preferred_output"][0]["content"]) for p in pairs}
        assert ("Down the road, by the well.", "Go away.") in chosen  # the logged preference, joined
        assert ("The inn is down the road, traveller.", "Go away.") in chosen  # the correction over its answer
        assert ("Well met!", "Hmph.") in chosen  # standalone
        wrong = await http.get(f"{NPC}/training-data", params={"format": "csv"})
        assert wrong.status_code == 422

    run(served, scenario)
