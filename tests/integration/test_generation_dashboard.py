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
from dataclasses import replace
from html import unescape

import httpx
from rich.console import Console

from generation_dashboard_scenario import START, feed_npc
from learnloop.app import create_app
from learnloop.cli.metrics_view import version_tables
from learnloop.clock import FakeClock
from learnloop.domain import VersionStatus
from learnloop.evaluation import JudgeScores, NllScores, PreferenceScores, compare_generators, paired_comparison
from learnloop.policy import Policy
from learnloop.services import Services
from learnloop.tasks.generation.ratings import mean_interval

Factory = Callable[..., Services]


def _row(html: str, element_id: str) -> str:
    """The ``<tr>`` with ``element_id``, as HTML."""
    found = re.search(rf'<tr[^>]*id="{re.escape(element_id)}".*?</tr>', html, re.S)
    assert found is not None, f"no row {element_id}"
    return found.group(0)


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _page(services: Services, path: str) -> httpx.Response:
    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=30) as http:
            return await http.get(path)

    return asyncio.run(get())


def test_a_generative_models_page_shows_answers_feedback_ratings_preferences_and_curation(
    services_factory: Factory, make_model: Callable[..., object]
) -> None:
    clock = FakeClock(START)
    services = services_factory(clock=clock)
    services.cache.serve()
    make_model(services, "m")
    ids = feed_npc(services, clock)

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
    assert "Who are you?" in smith and "Brom, the village smith." in smith and "v2" in smith  # promoted on day two
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
    # Each answer with all its feedback, old and new: what the service reads for the page.
    on_inn = services.feedback.on_answers("npc", [ids["inn_claude"]])
    assert [e.kind.value for e in on_inn] == ["rating", "preference", "rating", "rating"]  # newest first
    assert on_inn[1].related is not None and on_inn[1].related.prediction_id == ids["inn_gpt"]
    assert "rating 5 rating 4 rating 5" in _text(_row(html, f"answer-{ids['inn_claude']}"))
    # Preferences as chosen against rejected, standalone ones too.
    chosen = re.findall(r'<td class="chosen">(.*?)</td>\s*<td class="rejected">(.*?)</td>', html, re.S)
    pairs = [(_text(c), _text(r)) for c, r in chosen]
    assert ("claude-sonnet Down the road, past the well.", "gpt-4o I cannot say.") in pairs
    assert ("standalone Well met, traveller!", "standalone Go away.") in pairs
    assert len(pairs) == 3

    # The ratings: distribution, and the mean per version and day with its Student-t interval.
    for rating, n in ((5, 3), (4, 1), (3, 1), (2, 1), (1, 1)):
        assert f"<title>rating {rating}: {n} of 7</title>" in html, rating
    assert "7 ratings, mean 3.57" in text
    chart = re.search(r'<svg class="chart rating-chart".*?</svg>', html, re.S)
    assert chart is not None and "Student-t" in chart.group(0)
    points = re.findall(r'<g class="point"><title>(v\d), (\d{4}-\d\d-\d\d)', chart.group(0))
    assert sorted(points, key=lambda p: p[1]) == [("v1", "2026-03-02"), ("v2", "2026-03-03"), ("v1", "2026-03-04")]
    assert chart.group(0).count('<g class="marker promoted">') == 2  # v1 at creation, v2 on day two
    mean, low, high = mean_interval([5, 4, 1])
    assert low is not None and high is not None
    assert f"mean {mean:.2f} of 3 ratings, 95% CI {low:.2f} to {high:.2f}" in chart.group(0)
    assert "mean 3.33 of 3 ratings" in chart.group(0)  # day two, v2: 5, 3, 2
    assert "mean 5.00 of 1 ratings" in chart.group(0)  # day three, v1: no interval

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
    for name in ("sft", "preference"):  # two rated answers and a correction; three pairs (before the
        # rows sharing an answer with a held-out row left training)
        purged = counts[name]["dropped"].get("shares_held_out_answer", 0)
        assert counts[name]["train"] + counts[name]["held_out"] + purged >= 3, name
    assert counts["events"] == {"correction": 1, "implicit": 1, "preference": 3, "rating": 7, "thumbs": 2}
    assert "implicit unmapped 1" in _text(html[html.index('id="curation-skipped"') :][:400])

    # The models list and a version's page of a generative model render too.
    listed = _page(services, "/dashboard")
    assert listed.status_code == 200 and "/dashboard/models/npc" in listed.text
    version = _page(services, "/dashboard/models/npc/versions/2")
    assert version.status_code == 200 and "a better system prompt" in version.text

    # A classifier's page is unchanged: its own panels, none of these.
    classifier = _page(services, "/dashboard/models/m").text
    assert 'id="learning-curve"' in classifier and 'id="recent-feedback"' in classifier
    assert 'id="recent-answers"' not in classifier and 'id="curation"' not in classifier


def test_a_generative_verdict_shows_every_check_on_the_version_page_and_in_the_cli(services_factory: Factory) -> None:
    services = services_factory(clock=FakeClock(START))

    async def create() -> None:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=30) as http:
            body = {"name": "npc", "task": "generation", "backend": "external"}
            assert (await http.post("/v1/models", json=body)).status_code == 201

    asyncio.run(create())
    champion = services.registry.version("npc", 1)
    verdict = compare_generators(
        PreferenceScores([-1.0] * 12 + [1.0] * 18, [1.0] * 30),
        NllScores([1.25, 1.5, 2.0], [1.125, 1.5, 2.0], [10, 20, 30]),
        JudgeScores([0.25] * 16, [0.5] * 16, judge_auc=0.75, judge_auc_n=20, judge_trained_on=80),
        Policy(),
        resamples=200,
    )
    assert verdict["passed"]
    draft = replace(
        champion, status=VersionStatus.CANDIDATE, parent_version=1, verdict={**verdict, "champion_version": 1}
    )
    number = services.registry.register(draft, actor="test").version

    page = _page(services, f"/dashboard/models/npc/versions/{number}")
    assert page.status_code == 200, page.text
    preference = _text(_row(page.text, "check-preference_accuracy"))
    assert preference.startswith("held_out_pairs preference accuracy (summed margin) 30 60.0% 100.0% +40.0 pts")
    assert "0 / 12" in preference  # discordant: champion alone right / this version alone
    shift = _text(_row(page.text, "check-preference_shift"))  # 12 pairs moved toward the chosen, none away
    assert " 30 - 1.000 - " in shift and "0 / 12" in shift
    nll = _text(_row(page.text, "check-nll_per_token"))
    assert "held_out_good_answers" in nll and " 3 1.708 1.688 -0.021 " in nll + " "
    judge = _text(_row(page.text, "check-judge_score"))
    assert " 16 0.250 0.500 +0.250 +0.250 to +0.250 (90%)" in judge
    reasons = _text(re.search(r'<ul class="reasons">.*?</ul>', page.text, re.S).group(0))  # type: ignore[union-attr]
    assert "held-out preference accuracy 1.00 vs 0.60 (n=30 pairs" in reasons and "Wilcoxon signed-rank" in reasons

    console = Console(record=True, width=240)
    for table in version_tables(services.registry.version("npc", number)):
        console.print(table)
    shown = " ".join(console.export_text().split())
    assert "gate checks against version 1" in shown
    assert "preference accuracy (summed margin) │ held_out_pairs │ 30 │ 60.0% │ 100.0% │ +40.0 pts" in shown
    assert "NLL per token (nats) │ held_out_good_answers │ 3 │ 1.708 │ 1.688 │ -0.021" in shown
    assert "judge score │ held_out_prompts │ 16 │ 0.250 │ 0.500 │ +0.250" in shown and "reported" in shown

    # A classifier's verdict keeps its accuracy rows.
    golden = paired_comparison("golden", ["a"] * 10, ["a"] * 5 + ["b"] * 5, ["a"] * 10)
    classic = {"passed": True, "reasons": ["ok"], "comparisons": [golden.to_dict()], "champion_version": 1}
    number = services.registry.register(replace(draft, verdict=classic), actor="test").version
    html = _page(services, f"/dashboard/models/npc/versions/{number}").text
    table = _text(re.search(r'id="comparisons".*?</table>', html, re.S).group(0))  # type: ignore[union-attr]
    assert "golden 10 50.0% 100.0% +50.0 pts" in table and "0 / 5" in table
