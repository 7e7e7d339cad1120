"""The model page's story, a version's plots and the comparison of two versions, in a real
browser (Debian's Chromium driven by Playwright) against a real ``learnloop serve`` on a copy
of the story home (``tests/story_scenario.py``).

Screenshots of the three pages are written to the test's directory, and also to
``LEARNLOOP_DASHBOARD_SCREENSHOTS=DIR`` when set.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ServerLauncher

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

DEFAULT_CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = os.environ.get("LEARNLOOP_CHROMIUM") or DEFAULT_CHROMIUM
    if not os.access(path, os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail(f"no Chromium at {path}; CI=true: the browser test must run")
        pytest.skip(f"no Chromium at {path} (scripts/ensure-chromium installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def copy_home(story_home: Any, tmp_path: Path) -> tuple[Path, str]:
    """The server may write (its worker's checks): it gets a copy, the shared home stays as told."""
    home = tmp_path / "home"
    shutil.copytree(story_home.home, home)
    db = Path(story_home.database_url.removeprefix("sqlite:///"))
    shutil.copy(db, tmp_path / "ll.db")
    return home, f"sqlite:///{tmp_path}/ll.db"


def shoot(page: Any, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name), full_page=True)
    shots = os.environ.get("LEARNLOOP_DASHBOARD_SCREENSHOTS")
    if shots:
        page.screenshot(path=f"{shots}/{name}", full_page=True)


def test_the_story_the_version_plots_and_a_comparison_render_in_the_browser(
    story_home: Any, tmp_path: Path, live_server: ServerLauncher, browser: Any
) -> None:
    server = live_server.start(*copy_home(story_home, tmp_path))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        # The model page: the story of every version on live feedback, drift with its pictures.
        page.goto(f"{server.url}/dashboard/models/m")
        story = page.locator("#online-accuracy svg.story-chart")
        assert story.locator("g.point circle").count() == 14
        assert story.locator("g.marker.promoted").count() == 2 and story.locator("g.marker.rejected").count() == 1
        assert story.locator("g.golden-line").count() == 1  # version 1's golden accuracy (3 has none stored)
        box = story.bounding_box()
        assert box is not None and box["width"] > 800 and box["height"] > 250
        pictures = page.locator("#drift svg.drift-distribution")
        assert pictures.count() == 3 and pictures.nth(0).locator("g.bar.window rect").count() >= 1
        assert page.locator("#drift-examples li").count() == 5
        assert "never learned" in page.inner_text("#drift-examples")
        shoot(page, tmp_path, "dashboard-story.png")

        # A version's page draws its three plots.
        page.click("#version-2 a[href='/dashboard/models/m/versions/2']")
        page.wait_for_selector("#plots")
        assert page.locator("#plot-confusion g.cell").count() == 4
        assert page.locator("#plot-roc g.roc-curve path").count() == 1
        assert page.locator("#plot-reliability g.bin circle").count() >= 3
        shoot(page, tmp_path, "dashboard-version-plots.png")

        # From the versions list to the comparison of a version with the champion.
        page.goto(f"{server.url}/dashboard/models/m")
        page.click("#version-1 a.compare-link")
        page.wait_for_selector("#compare-metrics")
        assert page.url.endswith("/dashboard/models/m/compare?a=3&b=1")
        rows = page.locator("#compare-metrics tbody tr")
        assert rows.count() == 6 and "accuracy" in rows.nth(0).inner_text()
        assert "v1 descends from v3" not in page.inner_text("#lineage-summary")
        assert "v3 descends from v1" in page.inner_text("#lineage-summary")
        assert page.locator("#compare-plots g.roc-curve").count() == 2
        assert page.locator("#compare-plots svg.confusion-matrix").count() == 2
        # The form picks another pair.
        page.select_option("select[name=a]", "2")
        page.select_option("select[name=b]", "3")
        with page.expect_navigation():
            page.click("button:text-is('Compare')")
        assert "v2 against v3" in page.inner_text("h1")
        assert "Both descend from v1" in page.inner_text("#lineage-summary")
        shoot(page, tmp_path, "dashboard-compare.png")
        assert [e for e in errors if "Refused" in e or "Security Policy" in e] == []  # (a favicon 404 aside)
    finally:
        context.close()
