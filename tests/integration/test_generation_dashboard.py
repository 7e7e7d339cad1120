"""The dashboard's page of a generative model, through the app (HTTPX's ASGI transport) on a
migrated SQLite file and PostgreSQL: answers logged from two providers over three days,
rated, thumbed, corrected and compared; the page shows each answer with its feedback (the
correction beside the original), the ratings (distribution, mean per version and day with
intervals), the preferences by source and what curation counts, and none of a classifier's
panels. A classifier's page keeps its own."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from html import unescape

import httpx

from learnloop.app import create_app
from learnloop.clock import FakeClock
from learnloop.services import Services
from learnloop.tasks.generation.ratings import mean_interval

NPC = "/v1/models/npc"
DAY = 86_400.0
Factory = Callable[..., Services]


def _row(html: str, element_id: str) -> str:
    """The ``<tr>`` with ``element_id``, as HTML."""
    found = re.search(rf'<tr[^>]*id="{re.escape(element_id)}".*?</tr>', html, re.S)
    assert found is not None, f"no row {element_id}"
    return found.group(0)


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _feed(services: Services, clock: FakeClock) -> dict[str, str]:
    """Three days of answers and feedback on model ``npc``; returns the answers' ids."""
    ids: dict[str, str] = {}

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url="http://learnloop.test", timeout=30) as http:
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

    asyncio.run(scenario())
    return ids


def _page(services: Services, path: str) -> httpx.Response:
    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url="http://learnloop.test", timeout=30) as http:
            return await http.get(path)

    return asyncio.run(get())


def test_a_generative_models_page_shows_answers_feedback_ratings_preferences_and_curation(
    services_factory: Factory, make_model: Callable[..., object]
) -> None:
    clock = FakeClock(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    services = services_factory(clock=clock)
    services.cache.serve()
    make_model(services, "m")
    ids = _feed(services, clock)

    page = _page(services, "/dashboard/models/npc")
    assert page.status_code == 200, page.text
    html = page.text
    text = _text(html)
    # None of a classifier's panels; the generative ones instead.
    for absent in ('id="learning-curve"', 'id="online-accuracy"', 'id="recent-feedback"', "labels ", "golden accuracy"):
        assert absent not in html, absent
    for present in ("recent-answers", "ratings", "preference-counts", "curation", "drift", "versions"):
        assert f'id="{present}"' in html, present

    # Recent answers: prompt, response, version, source, the feedback on each.
    smith = _text(_row(html, f"answer-{ids['smith']}"))
    assert "Who are you?" in smith and "Brom, the village smith." in smith and "v1" in smith
    assert "claude-sonnet" in smith
    for given in ("rating 5", "rating 3", "thumbs up", "copied = True"):
        assert given in smith, given
    assert "thumbs down" in _text(_row(html, f"answer-{ids['smith_gpt']}"))
    # The correction beside the answer it corrects, original first.
    corrected = _row(html, f"answer-{ids['inn_gpt']}")
    assert 'class="side-by-side correction"' in corrected and "gpt-4o" in corrected
    original = re.search(r'class="original">(.*?)</div>\s*<div class="corrected">(.*?)</div>\s*</div>', corrected, re.S)
    assert original is not None
    assert "I cannot say." in _text(original.group(1)) and "The inn is by the old mill." in _text(original.group(2))
    assert "rating 1" in _text(corrected)
    # Preferences as chosen against rejected, standalone ones too.
    chosen = re.findall(r'<td class="chosen">(.*?)</td>\s*<td class="rejected">(.*?)</td>', html, re.S)
    pairs = [(_text(c), _text(r)) for c, r in chosen]
    assert ("claude-sonnet Down the road, past the well.", "gpt-4o I cannot say.") in pairs
    assert ("standalone Well met, traveller!", "standalone Go away.") in pairs
    assert len(pairs) == 3

    # The ratings: distribution, and the mean per version and day with its Student-t interval.
    for rating, n in ((5, 2), (4, 1), (3, 1), (2, 1), (1, 1)):
        assert f"<title>rating {rating}: {n} of 6</title>" in html, rating
    assert "6 ratings, mean 3.33" in text
    chart = re.search(r'<svg class="chart rating-chart".*?</svg>', html, re.S)
    assert chart is not None and "Student-t" in chart.group(0)
    assert chart.group(0).count('<g class="point">') == 2  # v1 on day one and day two
    mean, low, high = mean_interval([5, 4, 1])
    assert low is not None and high is not None
    assert f"mean {mean:.2f} of 3 ratings, 95% CI {low:.2f} to {high:.2f}" in chart.group(0)
    assert "mean 3.33 of 3 ratings" in chart.group(0)  # day two: 5, 3, 2

    # Preference counts by source, and what curation counts (the same numbers the report has).
    prefs = _text(re.search(r'id="preference-counts".*?</section>', html, re.S).group(0))  # type: ignore[union-attr]
    assert "claude-sonnet gpt-4o 2" in prefs and "standalone standalone 1" in prefs
    report = services.feedback.generation_report("npc")
    counts = report.sets.counts
    for name in ("sft", "preference", "kto"):
        row = _text(_row(html, f"curation-{name}"))
        numbers = [counts[name]["candidates"], counts[name]["train"], counts[name]["held_out"]]
        assert " ".join(str(n) for n in numbers) in row, (name, row, numbers)
        for reason, n in counts[name]["dropped"].items():
            assert f"{reason.replace('_', ' ')} {n}" in row
    assert counts["sft"]["train"] + counts["sft"]["held_out"] >= 3  # two rated answers and a correction
    assert counts["preference"]["train"] + counts["preference"]["held_out"] >= 3
    assert counts["events"] == {"correction": 1, "implicit": 1, "preference": 3, "rating": 6, "thumbs": 2}
    assert "implicit unmapped 1" in _text(html[html.index('id="curation-skipped"') :][:400])

    # A classifier's page is unchanged: its own panels, none of these.
    classifier = _page(services, "/dashboard/models/m").text
    assert 'id="learning-curve"' in classifier and 'id="recent-feedback"' in classifier
    assert 'id="recent-answers"' not in classifier and 'id="curation"' not in classifier
