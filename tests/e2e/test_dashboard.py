"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against a real
``learnloop serve`` with an admin key: a model with a champion, a version the gate judged, a
canary of a third version with live feedback on both arms.

* the pages render with data: the models list, the model page (champion, the canary and its
  statistics, versions with verdict reasons, recent feedback with disagreements), a version's
  metrics; the learning curve and the rollout chart draw;
* the rollback button is refused without the admin key, works after logging in (the canary
  ends, rolled back, and the page says so); a cross-site POST is refused even with the cookie.

A generative model's page: its answers with their feedback (a correction beside the answer it
corrects, preferences chosen against rejected), the rating charts, preferences and curation
counts, none of the classifier's panels.

``LEARNLOOP_DASHBOARD_SCREENSHOTS=DIR`` keeps full-page screenshots there.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conftest import LiveServer, ServerLauncher, create_model, make_settings, register_version, uci_rows, wait_for
from generation_dashboard_scenario import START, feed_npc
from learnloop.clock import FakeClock
from learnloop.domain import Scope
from learnloop.services import build_services

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

KEY = "dashboard-test-key"
READER: list[str] = []  # a key with the read scope only, made with the home


def log_in(page: Any, key: str) -> None:
    """On a login page (a refusal shows one): log in with ``key``, come back where it was."""
    page.fill("input[name=key]", key)
    with page.expect_navigation():
        page.click("button:text-is('Log in')")


M = "/v1/models/m"


def setup_home(tmp_path: Path) -> tuple[Path, str, int]:
    """Version 1 champion, version 2 judged (and rejected) by the gate, version 3 on a 50%
    canary that cannot decide by itself during the test. Returns home, URL, rollout id."""
    home = tmp_path / "home"
    url = f"sqlite:///{tmp_path}/ll.db"
    services = build_services(make_settings(home, url))
    try:
        create_model(services, "m")
        services.training.retrain("m", actor="test")
        better = register_version(services, "m", uci_rows("yelp") + uci_rows("amazon_cells"), note="learned phones")
        rollout = services.rollouts.start(
            "m", better.version, "canary", actor="test", reason="try phones", share=0.5,
            changes={"canary_min_feedback": 1000, "canary_step_seconds": 3600},
        )  # fmt: skip
        READER.append(services.access.create("reader", [Scope.READ], actor="test")[1])
    finally:
        services.close()
    return home, url, rollout.id


def give_feedback(server: LiveServer, rollout_id: int) -> None:
    """Users ask and correct: every third answer corrected to the other label."""
    rows = uci_rows("amazon_cells")[:60]
    with server.client(headers={"X-API-Key": KEY}) as http:
        for i, (text, label) in enumerate(rows):
            answer = http.post(f"{M}/predict", json={"text": text, "subject": f"user-{i}"}).json()
            given = label if i % 3 else ("0" if answer["label"] == "1" else "1")
            sent = http.post(f"{M}/feedback", json={"prediction_id": answer["prediction_id"], "label": given})
            assert sent.status_code == 201, sent.text

        def looked() -> bool:
            test = http.get(f"{M}/rollouts/{rollout_id}").json()["stats"].get("test", {})
            return bool(test.get("n_a")) and bool(test.get("n_b"))

        wait_for(looked, timeout=20, interval=0.3, what="the worker's look at the canary")


def test_dashboard_pages_charts_and_admin_actions(tmp_path: Path, live_server: ServerLauncher, browser: Any) -> None:
    home, url, rollout_id = setup_home(tmp_path)
    server = live_server.start(home, url, "--api-key", KEY)
    give_feedback(server, rollout_id)
    shots = os.environ.get("LEARNLOOP_DASHBOARD_SCREENSHOTS")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        # The server has keys: its pages need one (read), through a login.
        assert page.goto(server.url + "/").status == 401
        log_in(page, READER[-1])
        # The models page lists the model; / leads there.
        assert page.url.split("?")[0].endswith("/dashboard")
        row = page.locator("table.models tbody tr", has_text="m")
        assert row.count() == 1 and "canary" in row.inner_text()

        # The model page: champion, the canary with its statistics, versions, charts, feedback.
        page.click("table.models a[href='/dashboard/models/m']")
        page.wait_for_selector("#champion")
        assert "v1" in page.inner_text("#champion .big")
        panel = page.inner_text("#rollout")
        assert "Live canary" in panel and "v3 against v1" in panel and "always-valid CI" in panel
        assert "p-value" in panel and "Guardrails" in panel
        assert page.locator("#rollout svg.rollout-chart circle").count() >= 2
        assert page.locator("#version-2 .badge", has_text="rejected").count() == 1
        assert page.locator("#version-2 ul.reasons li").count() >= 1
        assert page.locator("#version-3 .badge", has_text="challenger").count() == 1
        curve = page.locator("svg.learning-curve")
        assert curve.locator("circle").count() >= 3 and curve.locator("path").count() >= 1
        assert curve.locator("rect.band").count() >= 1  # v1's champion period
        assert page.locator("#recent-feedback tr.disagrees").count() >= 3
        assert page.locator("#online-accuracy").count() == 1 and page.locator("#drift").count() == 1
        if shots:
            page.screenshot(path=f"{shots}/dashboard-model.png", full_page=True)

        # Recent feedback, only the disagreements.
        page.click("#recent-feedback a:text('only disagreements')")
        rows = page.locator("#recent-feedback tbody tr")
        assert rows.count() >= 3 and rows.count() == page.locator("#recent-feedback tr.disagrees").count()

        # A version page renders its metrics and lineage.
        page.goto(f"{server.url}/dashboard/models/m")
        page.click("#version-2 a[href='/dashboard/models/m/versions/2']")
        page.wait_for_selector("#metrics-golden")
        assert "accuracy" in page.inner_text("#metrics-golden")
        assert "parent" in page.inner_text("#lineage") and "v1" in page.inner_text("#lineage")
        assert page.locator("#verdict ul.reasons li").count() >= 1
        if shots:
            page.screenshot(path=f"{shots}/dashboard-version.png", full_page=True)

        # Rollback with a key that may only read: refused, the canary keeps running.
        page.goto(f"{server.url}/dashboard/models/m")
        with page.expect_navigation():
            page.click("#rollout-rollback")
        assert "admin scope" in page.inner_text("main")
        with server.client(headers={"X-API-Key": KEY}) as http:
            assert http.get(f"{M}/rollouts/{rollout_id}").json()["status"] == "running"

        # Log in with the admin key (from the refusal page), then the same button works.
        log_in(page, KEY)
        assert page.url.split("?")[0].endswith("/dashboard/models/m")
        assert "logged in" in page.inner_text(".flash")
        page.fill("#rollout input[name=reason]", "looks worse on phones")
        with page.expect_navigation():
            page.click("#rollout-rollback")
        assert "rolled back" in page.inner_text(".flash")
        assert page.locator("#no-rollout").count() == 1
        assert page.locator("#version-3 .badge", has_text="rejected").count() == 1
        assert page.locator("#events .badge", has_text="rolled back").count() >= 1
        with server.client(headers={"X-API-Key": KEY}) as http:
            ended = http.get(f"{M}/rollouts/{rollout_id}").json()
            assert ended["status"] == "rolled_back" and ended["reason"] == "looks worse on phones"

        # Cross-site POSTs are refused even with the admin cookie: a foreign Origin, or none.
        promote = f"{server.url}/dashboard/models/m/versions/3/promote"
        form = {"reason": "cross-site"}
        foreign = context.request.post(promote, form=form, headers={"Origin": "https://evil.example"})
        assert foreign.status == 403
        assert context.request.post(promote, form=form, max_redirects=0).status == 403
        same = context.request.post(
            f"{server.url}/dashboard/models/m/versions/9/promote", form=form, headers={"Origin": server.url},
            max_redirects=0,
        )  # fmt: skip
        assert same.status == 303 and "flash" in same.headers["location"]  # accepted, then a readable error
        with server.client(headers={"X-API-Key": KEY}) as http:
            assert http.get(M).json()["champion_version"] == 1
    finally:
        context.close()


def test_a_generative_models_page_in_the_browser(tmp_path: Path, live_server: ServerLauncher, browser: Any) -> None:
    home, url = tmp_path / "home", f"sqlite:///{tmp_path}/ll.db"
    clock = FakeClock(START)
    services = build_services(make_settings(home, url), clock=clock)
    try:
        services.cache.serve()
        with ThreadPoolExecutor(1) as pool:  # its own event loop: Playwright's runs in this thread
            ids = pool.submit(feed_npc, services, clock).result()
    finally:
        services.close()
    server = live_server.start(home, url, "--api-key", KEY)
    shots = os.environ.get("LEARNLOOP_DASHBOARD_SCREENSHOTS")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(f"{server.url}/dashboard/login?next=/dashboard/models/npc")
        log_in(page, KEY)
        page.wait_for_selector("#recent-answers")
        assert page.locator("#learning-curve, #online-accuracy, #recent-feedback").count() == 0
        corrected = page.locator(f"#answer-{ids['inn_gpt']} .side-by-side")
        original, fixed = corrected.locator(".original"), corrected.locator(".corrected")
        assert "I cannot say." in original.inner_text() and "The inn is by the old mill." in fixed.inner_text()
        left, right = original.bounding_box(), fixed.bounding_box()
        assert left is not None and right is not None
        assert left["x"] + left["width"] <= right["x"] and abs(left["y"] - right["y"]) < 2  # side by side
        preferences = page.locator("#recent-preferences tr.preference")
        assert preferences.count() == 3
        assert "Down the road" in preferences.locator("td.chosen").nth(2).inner_text()
        chart = page.locator("svg.rating-chart")
        assert chart.locator("circle").count() >= 3 and chart.locator("g.marker.promoted").count() == 2
        assert page.locator("svg.rating-distribution g.bar").count() == 5
        assert "claude-sonnet" in page.inner_text("#preference-counts")
        assert page.locator("#curation-sft td.num").count() == 3
        page.screenshot(path=str(tmp_path / "dashboard-generation.png"), full_page=True)
        if shots:
            page.screenshot(path=f"{shots}/dashboard-generation.png", full_page=True)
    finally:
        context.close()
