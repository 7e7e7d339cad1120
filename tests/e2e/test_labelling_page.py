"""The labelling page in a real browser (Debian's Chromium driven by Playwright) against a real
``learnloop serve``: a person labels what the model asks about with the keyboard, skips one,
undoes the last, and the database holds exactly the labels that remain, under the name they
entered once; refused before logging in when the server has an admin key. A generative
model's page: the better of two answers picked, one rated, one edited into a correction and
taken back.

``LEARNLOOP_DASHBOARD_SCREENSHOTS=DIR`` keeps full-page screenshots there (also written to
the test's temporary directory).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conftest import ServerLauncher, create_model, make_settings, uci_rows
from learnloop.domain import FeedbackEvent, Scope
from learnloop.feedback.intake import hash_subject
from learnloop.models import NewModel
from learnloop.services import Services, build_services

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

KEY = "labelling-test-key"


@contextmanager
def opened(home: Path, url: str) -> Iterator[Services]:
    services = build_services(make_settings(home, url))
    try:
        yield services
    finally:
        services.close()


def feedback_on(home: Path, url: str, model: str, ids: list[str]) -> list[FeedbackEvent]:
    """What the database holds about ``ids``, read beside the running server."""
    with opened(home, url) as services:
        return services.feedback.on_answers(model, ids)


def shoot(page: Any, tmp_path: Path, name: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")  # the sticky panel where it belongs
    page.screenshot(path=str(tmp_path / name), full_page=True)
    shots = os.environ.get("LEARNLOOP_DASHBOARD_SCREENSHOTS")
    if shots:
        page.screenshot(path=f"{shots}/{name}", full_page=True)


def item_ids(page: Any) -> list[str]:
    return [i.removeprefix("item-") for i in page.eval_on_selector_all(".label-item", "els => els.map(e => e.id)")]


def test_label_three_with_the_keyboard_undo_one_and_two_labels_are_stored(
    tmp_path: Path, live_server: ServerLauncher, browser: Any
) -> None:
    home, url = tmp_path / "home", f"sqlite:///{tmp_path}/ll.db"
    with opened(home, url) as services:
        create_model(services, "m")
        for text, _ in uci_rows("imdb")[:30]:
            services.predictions.predict("m", text)
        services.ingest.flush()
        reader = services.access.create("reader", [Scope.READ], actor="test")[1]
        labeller = services.access.create("labeller", [Scope.READ, Scope.LABEL], actor="test")[1]
    server = live_server.start(home, url, "--api-key", KEY)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        # Not logged in: the server has keys, so its pages ask for one.
        assert page.goto(f"{server.url}/dashboard/models/m").status == 401
        page.fill("input[name=key]", reader)
        with page.expect_navigation():
            page.click("button:text-is('Log in')")
        # A key with the read scope sees the model, not the labelling page (users' texts).
        with page.expect_navigation():
            page.click("#label-link")
        assert "label scope" in page.inner_text("main")

        page.fill("input[name=key]", labeller)
        with page.expect_navigation():
            page.click("button:text-is('Log in')")
        page.wait_for_selector(".label-item.current")
        ids = item_ids(page)
        assert len(ids) == 20 and page.locator(f"#item-{ids[0]}.current").count() == 1
        assert page.locator(f"#item-{ids[0]} button[data-key]").all_inner_texts() == ["1 0", "2 1"]
        page.fill("#labeller-name", "ann")
        page.press("#labeller-name", "Escape")  # leaves the field: kept in the browser from now on

        # 1, 2, skip, 1: three labels; then undo the last.
        for key, item in (("1", ids[0]), ("2", ids[1])):
            page.keyboard.press(key)
            page.wait_for_selector(f"#item-{item}.done")
        page.keyboard.press("s")
        assert page.locator(f"#item-{ids[2]}.skipped").count() == 1
        assert page.locator(f"#item-{ids[3]}.current").count() == 1
        page.keyboard.press("1")
        page.wait_for_selector(f"#item-{ids[3]}.done")
        assert "3 judged · 1 skipped · 16 left" in page.inner_text("#progress")
        shoot(page, tmp_path, "labelling-classifier.png")
        page.keyboard.press("u")
        page.wait_for_selector(f"#item-{ids[3]}.current:not(.done)")
        assert "taken back" in page.inner_text("#label-status")
        assert "2 judged · 1 skipped · 17 left" in page.inner_text("#progress")

        stored = feedback_on(home, url, "m", ids)
        assert sorted((e.prediction_id, e.feedback.label) for e in stored) == sorted([(ids[0], "0"), (ids[1], "1")])
        assert {e.feedback.subject for e in stored} == {hash_subject("dashboard:ann")}
        assert {e.feedback.metadata["via"] for e in stored if e.feedback.metadata} == {"dashboard labelling"}
        with opened(home, url) as services:
            (retracted,) = services.registry.events("m", 5, kinds=["feedback_retracted"])
            assert retracted.data["prediction_id"] == ids[3] and retracted.actor == "dashboard:key:labeller"

        # A new visit: the name is remembered, the labelled answers are no longer asked about.
        page.reload()
        page.wait_for_selector(".label-item.current")
        assert page.input_value("#labeller-name") == "ann"
        again = item_ids(page)
        assert ids[0] not in again and ids[1] not in again and {ids[2], ids[3]} <= set(again)

        # A click works as a key does.
        page.click(f"#item-{again[0]} button[data-key='2']")
        page.wait_for_selector(f"#item-{again[0]}.done")
        assert len(feedback_on(home, url, "m", [again[0]])) == 1
    finally:
        context.close()


def test_a_generative_model_pick_the_better_rate_and_correct_then_undo(
    tmp_path: Path, live_server: ServerLauncher, browser: Any
) -> None:
    home, url = tmp_path / "home", f"sqlite:///{tmp_path}/ll.db"
    with opened(home, url) as services:
        services.creation.create(NewModel("npc", task="generation", backend="external"), None, actor="test")

        def log(prompt: str, response: str, source: str) -> str:
            body = {"prompt": prompt, "response": response, "source_model": source}
            return services.generations.log_sync("npc", body).prediction_id

        inn_a = log("Where is the inn?", "Down the road, past the well.", "claude-sonnet")
        inn_b = log("Where is the inn?", "I cannot say.", "gpt-4o")
        smith = log("Who are you?", "Brom, the village smith.", "claude-sonnet")
        hello = log("Hello?", "Go away.", "gpt-4o")
        services.ingest.flush()
    server = live_server.start(home, url)  # no admin key: loopback, actions open
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(f"{server.url}/dashboard/models/npc")
        assert "Rate and compare" in page.inner_text("#label-link")
        page.click("#label-link")
        page.wait_for_selector(".label-item.current")
        assert item_ids(page) == [inn_b, hello, smith]  # the pair first, then the newest answers
        pair = page.locator(f"#item-{inn_b} .candidate")
        assert pair.count() == 2 and "I cannot say." in pair.nth(0).inner_text()
        left, right = pair.nth(0).bounding_box(), pair.nth(1).bounding_box()
        assert left is not None and right is not None and left["x"] + left["width"] <= right["x"]

        page.keyboard.press("b")  # b: the second answer (Down the road) is the better one
        page.wait_for_selector(f"#item-{inn_b}.done")
        page.keyboard.press("e")  # hello: edit it into a correction
        area = page.locator(f"#item-{hello} textarea")
        assert area.evaluate("a => a === document.activeElement") and area.input_value() == "Go away."
        area.fill("Well met, traveller!")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector(f"#item-{hello}.done")
        page.keyboard.press("4")  # smith: rated 4
        page.wait_for_selector(f"#item-{smith}.done")
        assert page.locator("#all-done:not([hidden])").count() == 1
        shoot(page, tmp_path, "labelling-generation.png")
        page.keyboard.press("u")  # the rating taken back
        page.wait_for_selector(f"#item-{smith}.current:not(.done)")

        stored = feedback_on(home, url, "npc", [inn_a, inn_b, smith, hello])
        given = sorted((e.kind.value, e.prediction_id) for e in stored)
        assert given == sorted([("preference", inn_a), ("correction", hello)])
        by_kind = {e.kind.value: e.feedback for e in stored}
        assert by_kind["preference"].payload["rejected_prediction_id"] == inn_b
        assert by_kind["correction"].payload["correction"] == "Well met, traveller!"
        assert {fb.subject for fb in by_kind.values()} == {hash_subject("dashboard:loopback")}
    finally:
        context.close()
