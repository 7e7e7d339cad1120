"""Asking for feedback where it helps, on a migrated real database (SQLite and PostgreSQL):
the champion's newest unlabelled answers, most uncertain first. The route and the CLI are
checked here through the ASGI app, and through a live server in ``tests/e2e/test_ask_http.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from learnloop.app import create_app
from learnloop.domain import FeedbackInput, ModelVersion
from learnloop.errors import NotFoundError, ValidationError
from learnloop.services import Services
from learnloop.tasks.classification.active import margin_of


def serve_imdb(services: Services, shipped_rows: Callable[[str], list[tuple[str, str]]], n: int) -> dict[str, float]:
    """Predict ``n`` IMDB sentences with the champion; the margin of each answer by prediction id."""
    margins = {}
    for text, _ in shipped_rows("imdb")[:n]:
        r = services.predictions.predict("m", text, "user-1")
        margins[r.prediction_id] = margin_of(r.probabilities)
    services.ingest.flush()
    return margins


def test_ask_returns_the_smallest_margins_among_unlabelled_answers_of_the_champion(
    services: Services,
    make_model: Callable[..., ModelVersion],
    shipped_rows: Callable[[str], list[tuple[str, str]]],
) -> None:
    make_model(services, "m")
    margins = serve_imdb(services, shipped_rows, 80)
    labelled = sorted(margins, key=margins.__getitem__)[:3]  # the three most uncertain get feedback
    services.feedback.record_sync("m", [FeedbackInput(prediction_id=pid, label="1") for pid in labelled])

    result = services.active.ask("m", limit=10, window=1000)

    assert result.version == 1 and result.considered == 77
    ids = [item.pick.id for item in result.items]
    assert len(ids) == 10 and not set(ids) & set(labelled)
    assert [item.pick.margin for item in result.items] == sorted(item.pick.margin for item in result.items)
    for item in result.items:
        assert item.pick.margin == pytest.approx(margins[item.pick.id])
    # Diversity aside, nothing left out is more uncertain than the last pick.
    unlabelled = sorted(m for pid, m in margins.items() if pid not in labelled)
    assert result.items[0].pick.margin == pytest.approx(unlabelled[0])
    # The window is the newest unlabelled answers: a window of 5 ranks only those.
    assert services.active.ask("m", limit=10, window=5).considered == 5

    by_entropy = services.active.ask("m", limit=10, strategy="entropy")
    assert [i.pick.score for i in by_entropy.items] == sorted((i.pick.score for i in by_entropy.items), reverse=True)

    with pytest.raises(ValidationError) as bad:
        services.active.ask("m", strategy="random")
    assert bad.value.field == "strategy"
    with pytest.raises(ValidationError):
        services.active.ask("m", limit=0)
    with pytest.raises(NotFoundError):
        services.active.ask("nope")


def test_the_route_maps_the_service_and_its_errors(
    services: Services,
    make_model: Callable[..., ModelVersion],
    shipped_rows: Callable[[str], list[tuple[str, str]]],
) -> None:
    make_model(services, "m")
    margins = serve_imdb(services, shipped_rows, 40)
    app = create_app(services=services)

    async def get(path: str, **params: object) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.get(path, params=params)

    response = asyncio.run(get("/v1/models/m/ask", limit=5, strategy="margin", window=1000))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 1 and body["strategy"] == "margin" and body["considered"] == 40
    first = body["items"][0]
    assert set(first) >= {"prediction_id", "text", "label", "probabilities", "score", "margin", "reason"}
    assert first["score"] == pytest.approx(min(margins.values()))
    assert [i["score"] for i in body["items"]] == sorted(i["score"] for i in body["items"])

    bad = asyncio.run(get("/v1/models/m/ask", strategy="loudest"))
    assert bad.status_code == 422 and bad.json()["field"] == "strategy", bad.text
    assert asyncio.run(get("/v1/models/m/ask", limit=0)).status_code == 422
    assert asyncio.run(get("/v1/models/nope/ask")).status_code == 404
