"""Every notifier through the same checks: it answers a DeliveryOutcome, leaves the event as
it was, and reports a failure instead of raising."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from conftest import free_port
from learnloop.clock import FakeClock
from learnloop.domain import Event
from learnloop.notify import (
    DeliveryOutcome,
    FunctionNotifier,
    LogNotifier,
    Notifier,
    Outcome,
    WebhookNotifier,
    verify_signature,
)
from webhook_receiver import Receiver, receiving

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EVENT = Event(5, "sentiment", "promoted", 3, "rollout:2", "schedule complete", {"previous": 2, "stats": {"n": 1}}, T0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as c:
        yield c


def log_notifier(receiver: Receiver, client: httpx.Client) -> Notifier:
    return LogNotifier()


def function_notifier(receiver: Receiver, client: httpx.Client) -> Notifier:
    return FunctionNotifier(lambda event: None)


def json_webhook(receiver: Receiver, client: httpx.Client) -> Notifier:
    return WebhookNotifier(receiver.url, "s" * 20, client=client, clock=FakeClock(T0))


def slack_webhook(receiver: Receiver, client: httpx.Client) -> Notifier:
    return WebhookNotifier(receiver.url, "s" * 20, client=client, clock=FakeClock(T0), format="slack")


NOTIFIERS: dict[str, Callable[[Receiver, httpx.Client], Notifier]] = {
    "log": log_notifier,
    "function": function_notifier,
    "webhook-json": json_webhook,
    "webhook-slack": slack_webhook,
}


@pytest.mark.parametrize("make", NOTIFIERS.values(), ids=NOTIFIERS.keys())
def test_notifier_delivers_and_leaves_the_event_alone(
    make: Callable[[Receiver, httpx.Client], Notifier], receiver: Receiver, client: httpx.Client
) -> None:
    notifier = make(receiver, client)
    before = copy.deepcopy(EVENT)
    outcome = notifier.send(EVENT)
    assert isinstance(outcome, DeliveryOutcome)
    assert outcome.delivered, outcome
    assert before == EVENT
    if isinstance(notifier, WebhookNotifier):
        [request] = receiver.requests
        assert request.headers["x-learnloop-event"] == "promoted"
        timestamp = request.headers["x-learnloop-timestamp"]
        assert verify_signature(
            "s" * 20, timestamp, request.body, request.headers["x-learnloop-signature"], now=T0.timestamp()
        )


def test_log_notifier_writes_one_structured_record(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="learnloop.events"):
        LogNotifier().send(EVENT)
    [record] = [r for r in caplog.records if r.name == "learnloop.events"]
    assert record.getMessage().startswith("sentiment: version 3 promoted")
    assert (record.event_id, record.event_kind, record.model, record.version) == (5, "promoted", "sentiment", 3)  # type: ignore[attr-defined]


@pytest.mark.parametrize("answer", [500, 503, 408, 429])
def test_webhook_reports_a_transient_answer_as_retry(answer: int, client: httpx.Client) -> None:
    with receiving([(answer, {"Retry-After": "7"})]) as r:
        outcome = WebhookNotifier(r.url, "s" * 20, client=client, clock=FakeClock(T0)).send(EVENT)
    assert (outcome.outcome, outcome.status_code, outcome.retry_after) == (Outcome.RETRY, answer, 7)


@pytest.mark.parametrize("answer", [400, 401, 404, 410, 301])
def test_webhook_reports_a_refusal_as_failed(answer: int, client: httpx.Client) -> None:
    with receiving([answer]) as r:
        outcome = WebhookNotifier(r.url, "s" * 20, client=client, clock=FakeClock(T0)).send(EVENT)
    assert (outcome.outcome, outcome.status_code) == (Outcome.FAILED, answer)


def test_webhook_reports_an_unreachable_receiver_as_retry(client: httpx.Client) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    outcome = WebhookNotifier(url, "s" * 20, client=client, clock=FakeClock(T0)).send(EVENT)
    assert outcome.outcome == Outcome.RETRY
    assert outcome.status_code is None and "ConnectError" in (outcome.error or "")
