"""A feedback message's body is parsed once, with its envelope, on the consumer's hot path; what
it stores or refuses, and why, is what the HTTP batch path (``record_many`` on the raw body)
answers for the same body: every refusal's code and reason, the model checked before the body,
the stored events counted by kind and the refusals by code."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import orjson

from learnloop.domain import FeedbackInput
from learnloop.feedback.items import FeedbackCreate
from learnloop.models import NewModel
from learnloop.services import Services
from learnloop.streams.intake import Refusal
from learnloop.streams.sources import stream_intake


def _message(event: dict[str, Any], id_: str, model: str = "npc") -> bytes:
    return orjson.dumps({"id": id_, "type": "feedback", "model": model, "event": event})


def _bodies() -> list[dict[str, Any]]:
    def said() -> str:
        return str(uuid.uuid4())

    return [
        {"prediction_id": said(), "rating": 4},
        {"prediction_id": said(), "rating": 9},
        {"prediction_id": said(), "rating": True},
        {"prediction_id": said(), "rating": 4, "colour": "red"},
        {"prediction_id": said(), "thumbs": "up", "metadata": {"page": "faq"}, "subject": "ann"},
        {"prediction_id": said().upper(), "correction": "Two doors down."},
        {"prediction_id": "not-a-uuid", "rating": 3},
        {"prediction_id": said(), "signal": "copied", "value": "yes"},
        {"prediction_id": said(), "signal": "copied", "value": True},
        {"prediction_id": said(), "label": 5},
        {"text": "Where is the inn?", "label": "inn"},
        {"prompt": "Hello?", "chosen": "Well met!", "rejected": "What."},
        {"prompt": "Hello?", "chosen": "Well met!", "rejected": "What.", "strength": 2},
        {"prediction_id": said(), "rating": 4, "metadata": {"a": {"b": {"c": {"d": {"e": 1}}}}}},
        {"prediction_id": said(), "thumbs": "up", "correction": "both"},
        {"prediction_id": said(), "text": "\x00"},
        {},
    ]


def _handle(services: Services, messages: list[bytes]) -> list[Refusal | None]:
    return asyncio.run(stream_intake(services).handle(messages))


def _counted(services: Services, name: str, labels: dict[str, str]) -> float:
    return services.metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_feedback_message_is_stored_or_refused_as_the_http_batch_path_answers_its_body(
    services: Services,
) -> None:
    services.creation.create(NewModel("npc", task="generation", backend="external"), None, actor="test")
    bodies = _bodies()
    ids = [f"evt-{i}" for i in range(len(bodies))]
    with_key = [{**b, "feedback_id": i} if n % 2 else b for n, (b, i) in enumerate(zip(bodies, ids, strict=True))]

    streamed = _handle(services, [_message(b, i) for b, i in zip(with_key, ids, strict=True)])
    raw = [{**b, "feedback_id": f"http-{i}"} for b, i in zip(bodies, ids, strict=True)]
    results = asyncio.run(services.feedback.record_many("npc", raw))
    assert results is not None
    over_http = [None if r.error is None else Refusal.of(r.error) for r in results]

    assert streamed == over_http
    assert streamed[0] is None and streamed[1] is not None and streamed[1].code == "validation_error"
    everything = [e.feedback for e in services.feedback.recent("npc", 100)]
    stored = [fb for fb in everything if fb.client_id in ids]
    assert sorted(fb.client_id for fb in stored) == sorted(i for i, o in zip(ids, streamed, strict=True) if o is None)
    assert {fb.client_id: fb.metadata for fb in stored}["evt-4"] == {"page": "faq"}
    assert {fb.client_id: fb.prediction_id for fb in stored}["evt-5"] == bodies[5]["prediction_id"].lower()
    counts: dict[str, int] = {}
    for fb in everything:
        counts[fb.kind.value] = counts.get(fb.kind.value, 0) + 1
    for kind, n in counts.items():
        assert _counted(services, "learnloop_feedback_total", {"model": "npc", "kind": kind}) == n
    codes = [o.code for o in streamed if o is not None]
    for code in set(codes):  # each refusal counted once on each path
        assert _counted(
            services, "learnloop_feedback_rejected_total", {"model": "npc", "code": code}
        ) == 2 * codes.count(code)


def test_the_model_is_checked_before_the_body_and_a_differing_feedback_id_is_refused(services: Services) -> None:
    services.creation.create(NewModel("npc", task="generation", backend="external"), None, actor="test")
    said = str(uuid.uuid4())
    outcomes = _handle(
        services,
        [
            _message({"prediction_id": said, "rating": 9}, "a", model="nobody"),
            _message({"prediction_id": said, "rating": 4}, "b", model="nobody"),
            _message({"prediction_id": said, "rating": 4, "feedback_id": "other"}, "c"),
            _message({"prediction_id": said, "rating": 9, "feedback_id": "other"}, "d"),
            _message({"prediction_id": said, "rating": 4, "feedback_id": "e"}, "e"),
        ],
    )
    assert [o.code if o else None for o in outcomes] == [
        "not_found",
        "not_found",
        "validation_error",
        "validation_error",
        None,
    ]
    differs = Refusal("validation_error", "event.feedback_id differs from the message's id (event.feedback_id)")
    assert outcomes[2] == outcomes[3] == differs
    assert [e.feedback.client_id for e in services.feedback.recent("npc", 10)] == ["e"]


def test_a_parsed_body_becomes_the_same_feedback_input_its_fields_would_make() -> None:
    assert set(FeedbackCreate.model_fields) == {f.name for f in dataclasses.fields(FeedbackInput)}
    body = FeedbackCreate.model_validate({"prediction_id": "p", "label": 3, "metadata": {"a": [1]}, "feedback_id": "k"})
    assert body.to_input() == FeedbackInput(**body.model_dump())
    assert body.to_input("m") == FeedbackInput(**{**body.model_dump(), "feedback_id": "m"})
    assert body.to_input().label == "3"
