"""Taking feedback back (the labelling page's undo) and what a generative model offers to judge,
on a migrated real database (SQLite and PostgreSQL). The page itself is driven in Chromium by
``tests/e2e/test_labelling_page.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from learnloop.app import create_app
from learnloop.domain import FeedbackInput, ModelVersion
from learnloop.errors import ConflictError, NotFoundError, WrongTaskError
from learnloop.feedback.intake import hash_subject
from learnloop.models import NewModel
from learnloop.services import Services


def test_a_label_is_taken_back_only_by_who_gave_it_and_counts_nowhere_after(
    services: Services, make_model: Callable[..., ModelVersion]
) -> None:
    make_model(services, "m")
    answers = [services.predictions.predict("m", f"the food was fine {i}") for i in range(3)]
    services.ingest.flush()
    ann, bob, kept = services.feedback.record_sync(
        "m",
        [
            FeedbackInput(prediction_id=answers[0].prediction_id, label="1", subject="ann", feedback_id="ann-0"),
            FeedbackInput(prediction_id=answers[1].prediction_id, label="0", subject="bob"),
            FeedbackInput(prediction_id=answers[2].prediction_id, label="0", subject="bob"),
        ],
    )
    with pytest.raises(ConflictError, match="another subject"):
        services.feedback.retract("m", ann.id, subject="bob", actor="test")
    assert services.feedback.get("m", ann.id).id == ann.id  # still there

    done = services.feedback.retract("m", "ann-0", subject="ann", actor="test", reason="wrong key")  # the client key
    assert done.feedback.id == ann.id and done.in_snapshots == ()
    with pytest.raises(NotFoundError):
        services.feedback.get("m", ann.id)
    with pytest.raises(NotFoundError):  # twice: nothing left to take back
        services.feedback.retract("m", ann.id, subject="ann", actor="test")
    assert services.registry.overview("m").feedback_counts == {"label": 2}
    # The answer is unjudged again: the loop may ask about it anew.
    asked = {item.pick.id for item in services.active.ask("m", limit=10).items}
    assert answers[0].prediction_id in asked and answers[1].prediction_id not in asked
    (event,) = services.registry.events("m", 10, kinds=["feedback_retracted"])
    assert event.actor == "test" and event.reason == "wrong key"
    assert event.data == {
        "feedback_id": ann.id, "kind": "label", "prediction_id": answers[0].prediction_id, "in_snapshots": [],
    }  # fmt: skip
    assert "ann" not in str(event.data)  # never the subject

    # An operator (no subject) may take back anyone's; a snapshot taken since is named.
    services.training.retrain("m", actor="test")
    later = services.feedback.retract("m", bob.id, subject=None, actor="operator")
    assert len(later.in_snapshots) == 1
    assert services.registry.overview("m").feedback_counts == {"label": 1}
    assert services.feedback.get("m", kept.id).label == "0"
    with pytest.raises(NotFoundError):
        services.feedback.retract("nope", kept.id, subject=None, actor="test")


def test_a_generative_model_offers_pairs_to_compare_then_answers_to_rate_never_one_judged(
    services: Services, make_model: Callable[..., ModelVersion]
) -> None:
    services.creation.create(NewModel("npc", task="generation", backend="external"), None, actor="test")

    def log(prompt: str, response: str, source: str) -> str:
        body = {"prompt": prompt, "response": response, "source_model": source}
        return services.generations.log_sync("npc", body).prediction_id

    inn_a = log("Where is the inn?", "Down the road.", "claude-sonnet")
    inn_b = log("Where is the inn?", "I cannot say.", "gpt-4o")
    smith = log("Who are you?", "Brom, the smith.", "claude-sonnet")
    rated = log("Hello?", "Well met!", "claude-sonnet")
    services.ingest.flush()
    services.feedback.record_sync("npc", [FeedbackInput(prediction_id=rated, rating=4, subject="ann")])

    offered = services.active.answers_to_judge("npc", limit=10)
    assert offered.version == 1 and offered.considered == 3
    assert [tuple(a.prediction_id for a in item) for item in offered.items] == [(inn_b, inn_a), (smith,)]
    assert offered.items[0][1].source == "claude-sonnet" and offered.items[1][0].response == "Brom, the smith."
    assert len(services.active.answers_to_judge("npc", limit=1).items) == 1

    # A preference judges both answers (the rejected one has no event of its own).
    services.feedback.record_sync("npc", [FeedbackInput(chosen_prediction_id=inn_a, rejected_prediction_id=inn_b)])
    assert [[a.prediction_id for a in item] for item in services.active.answers_to_judge("npc").items] == [[smith]]

    with pytest.raises(WrongTaskError):
        services.active.ask("npc")
    make_model(services, "m")
    with pytest.raises(WrongTaskError):
        services.active.answers_to_judge("m")


def test_the_labelling_actions_answer_the_script_in_json_and_plain_forms_with_a_redirect(
    services: Services, make_model: Callable[..., ModelVersion]
) -> None:
    """The page's two actions through the app (HTTPX's ASGI transport), on a server without an
    admin key: same-origin only, JSON for the script, a redirect for a form posted without it."""
    make_model(services, "m")
    ids = [services.predictions.predict("m", f"the soup was cold {i}").prediction_id for i in range(2)]
    services.ingest.flush()
    base = "http://localhost"
    label, undo = "/dashboard/models/m/label", "/dashboard/models/m/label/undo"
    script = {"Origin": base, "Accept": "application/json"}

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url=base, timeout=30) as http:
            return [
                await http.get(label),
                await http.post(label, data={"prediction_id": ids[0], "label": "1"}),  # no Origin
                await http.post(label, data={"prediction_id": ids[0], "label": "1"}, headers={**script, "Origin": "https://evil.example"}),
                await http.post(label, data={"prediction_id": ids[0], "label": "7", "name": "ann"}, headers=script),
                await http.post(label, data={"prediction_id": ids[0], "label": "1", "name": "ann"}, headers=script),
                await http.post(label, data={"prediction_id": ids[1], "label": "0"}, headers={"Origin": base}),
            ]  # fmt: skip

    page, foreign, cross_site, bad, stored, plain = asyncio.run(scenario())
    assert page.status_code == 200 and f'id="item-{ids[0]}"' in page.text and 'data-key="2"' in page.text
    assert foreign.status_code == 403 and cross_site.status_code == 403
    assert cross_site.json()["login"] is False
    assert bad.status_code == 422 and "label" in bad.json()["error"]
    assert stored.status_code == 200 and stored.json()["kind"] == "label"
    assert plain.status_code == 303 and plain.headers["location"].startswith(label + "?flash=label+stored")
    by_id = {e.prediction_id: e.feedback for e in services.feedback.on_answers("m", ids)}
    assert by_id[ids[0]].id == stored.json()["feedback_id"] and by_id[ids[0]].subject == hash_subject("dashboard:ann")
    assert by_id[ids[1]].subject == hash_subject("dashboard:loopback")  # no name, no key

    async def undo_as(name: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url=base, timeout=30) as http:
            return await http.post(
                undo, data={"feedback_id": stored.json()["feedback_id"], "name": name}, headers=script
            )

    refused = asyncio.run(undo_as("bob"))
    assert refused.status_code == 409 and "another subject" in refused.json()["error"]
    taken_back = asyncio.run(undo_as("ann"))
    assert taken_back.status_code == 200 and taken_back.json()["retracted"] == stored.json()["feedback_id"]
    assert [e.prediction_id for e in services.feedback.on_answers("m", ids)] == [ids[1]]
