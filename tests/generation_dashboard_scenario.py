"""Three days of a generative model's life, for the dashboard's tests: an external model
``npc`` whose answers come from two providers, rated, thumbed, corrected and compared, with a
second version promoted on day two. Through the app (HTTPX's ASGI transport) on services
with a ``FakeClock``, so the days are real days in the stored times."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import httpx

from learnloop.app import create_app
from learnloop.clock import FakeClock
from learnloop.domain import VersionStatus
from learnloop.services import Services

NPC = "/v1/models/npc"
DAY = 86_400.0
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def promote_copy(services: Services, model: str = "npc") -> int:
    """Register a copy of the champion as a new version and promote it (an external model's
    versions have no artifact); returns its number."""
    champion = services.registry.version(model, services.registry.deployment(model).champion_version or 1)
    draft = replace(champion, status=VersionStatus.CANDIDATE, parent_version=champion.version, verdict=None)
    version = services.registry.register(draft, actor="test")
    services.registry.promote(model, version.version, actor="test", reason="a better system prompt")
    return version.version


def feed_npc(services: Services, clock: FakeClock) -> dict[str, str]:
    """Create ``npc`` and three days of answers and feedback on it; returns the answers' ids."""
    ids: dict[str, str] = {}

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=30) as http:
            created = await http.post("/v1/models", json={"name": "npc", "task": "generation", "backend": "external"})
            assert created.status_code == 201, created.text

            async def log(key: str, prompt: str, response: str, source: str) -> None:
                body = {"prompt": prompt, "response": response, "source_model": source}
                answer = await http.post(f"{NPC}/generations", json=body)
                assert answer.status_code == 201, answer.text
                ids[key] = answer.json()["prediction_id"]

            async def send(**body: object) -> None:
                sent = await http.post(f"{NPC}/feedback", json=body)
                assert sent.status_code == 201, sent.text

            await log("inn_claude", "Where is the inn?", "Down the road, past the well.", "claude-sonnet")
            await log("inn_gpt", "Where is the inn?", "I cannot say.", "gpt-4o")
            services.ingest.predictions.drain()
            await send(prediction_id=ids["inn_claude"], rating=5, subject="ann")
            await send(prediction_id=ids["inn_claude"], rating=4, subject="bob")
            await send(prediction_id=ids["inn_gpt"], rating=1, subject="ann")
            await send(prediction_id=ids["inn_gpt"], correction="The inn is by the old mill.", subject="bob")
            await send(chosen_prediction_id=ids["inn_claude"], rejected_prediction_id=ids["inn_gpt"], strength=0.9)
            clock.advance(DAY)
            promote_copy(services)
            await log("smith", "Who are you?", "Brom, the village smith.", "claude-sonnet")
            await log("smith_gpt", "Who are you?", "A person.", "gpt-4o")
            services.ingest.predictions.drain()
            await send(prediction_id=ids["smith"], rating=5, subject="ann")
            await send(prediction_id=ids["smith"], rating=3, subject="cid")
            await send(prediction_id=ids["smith"], thumbs="up", subject="bob")
            await send(prediction_id=ids["smith"], signal="copied", value=True, subject="ann")
            await send(prediction_id=ids["smith_gpt"], rating=2, subject="ann")
            await send(chosen_prediction_id=ids["smith"], rejected_prediction_id=ids["smith_gpt"])
            clock.advance(DAY)
            await send(prompt="Hello?", chosen="Well met, traveller!", rejected="Go away.", strength=1.0)
            await send(prediction_id=ids["smith_gpt"], thumbs="down", subject="cid")
            await send(prediction_id=ids["inn_claude"], rating=5, subject="cid")

    asyncio.run(scenario())
    return ids
