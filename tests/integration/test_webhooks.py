"""Webhook deliveries on a real database (SQLite file and PostgreSQL) to a real HTTP receiver:
signed, retried with backoff, failed for good on a refusal, filtered, delivered once with two
services on one database, and never to a removed webhook."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest
from prometheus_client import generate_latest

from conftest import create_model, free_port, register_version
from learnloop.clock import FakeClock
from learnloop.domain import Event, Model
from learnloop.errors import NotFoundError, ValidationError
from learnloop.notify import DeliveryStatus, FunctionNotifier, RetryPolicy, verify_signature
from learnloop.notify.service import NotificationService
from learnloop.policy import Policy
from learnloop.services import Services
from learnloop.store.repositories import events as event_repo
from learnloop.store.repositories import models as model_repo
from webhook_receiver import receiving

SECRET = "integration-test-secret"


def start_clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


def add_models(services: Services, *names: str) -> None:
    with services.db.write() as conn:
        for name in names:
            model_repo.insert_model(
                conn,
                Model(name, "classification", ("0", "1"), "tfidf-logreg", {}, Policy(), services.clock.now()),
            )


def add_event(services: Services, clock: FakeClock, model: str, kind: str, version: int | None = 2) -> int:
    with services.db.write() as conn:
        event_repo.insert_event(
            conn, model=model, kind=kind, at=clock.now(), actor="test", version=version, reason="why"
        )
        return event_repo.max_event_id(conn)


def notifier(
    services: Services, clock: FakeClock, seen: list[Event] | None = None, **kwargs: object
) -> NotificationService:
    recorded = seen if seen is not None else []
    return NotificationService(
        services.db,
        clock,
        services.metrics,
        notifiers=[FunctionNotifier(lambda e: recorded.append(e) and None)],
        rng=random.Random(0),
        **kwargs,  # type: ignore[arg-type]
    )


def counter(services: Services, outcome: str) -> float:
    value = services.metrics.registry.get_sample_value("learnloop_webhook_deliveries_total", {"outcome": outcome})
    return value or 0.0


def test_an_event_reaches_a_webhook_with_a_valid_signature(services: Services) -> None:
    clock = start_clock()
    add_models(services, "m")
    seen: list[Event] = []
    notify = notifier(services, clock, seen)
    with receiving() as receiver:
        hook = notify.add_webhook(receiver.url + "/hook", model="m", secret=SECRET)
        event_id = add_event(services, clock, "m", "promoted")
        result = notify.dispatch()
        assert (result.events, result.created, len(result.attempts)) == (1, 1, 1)
        [request] = receiver.requests
    [delivery] = notify.deliveries(hook.id)
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-learnloop-event"] == "promoted"
    assert request.headers["x-learnloop-delivery"] == str(delivery.id)
    timestamp = request.headers["x-learnloop-timestamp"]
    assert int(timestamp) == int(clock.now().timestamp())
    signature = request.headers["x-learnloop-signature"]
    assert verify_signature(SECRET, timestamp, request.body, signature, now=clock.now().timestamp())
    assert not verify_signature(SECRET, timestamp, request.body + b" ", signature, now=clock.now().timestamp())
    body = request.json()
    assert (body["id"], body["model"], body["kind"], body["version"]) == (event_id, "m", "promoted", 2)
    assert body["link"] == f"/v1/models/m/events?after_id={event_id - 1}"
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DeliveryStatus.DELIVERED, 1, 200)
    assert delivery.delivered_at == clock.now() and delivery.event_kind == "promoted"
    assert [e.id for e in seen] == [event_id]  # the in-process notifiers see it too
    assert counter(services, "delivered") == 1
    assert b"learnloop_webhook_deliveries_pending 0.0" in generate_latest(services.metrics.registry)
    assert notify.dispatch().events == 0  # nothing new, nothing sent twice
    assert len(receiver.requests) == 1


def test_5xx_is_retried_with_backoff_then_delivered_and_every_attempt_recorded(services: Services) -> None:
    clock = start_clock()
    add_models(services, "m")
    notify = notifier(services, clock, retry=RetryPolicy(jitter=0.2))
    with receiving([500, (503, {"Retry-After": "3"}), 200]) as receiver:
        hook = notify.add_webhook(receiver.url, secret=SECRET)
        add_event(services, clock, "m", "rolled_back")
        expected = [(1, 500, 0.8, 1.2), (2, 503, 3.0, 3.0)]  # attempt, answer, shortest and longest wait
        for attempt, answer, low, high in expected:
            notify.dispatch()
            [d] = notify.deliveries(hook.id)
            assert (d.status, d.attempts, d.last_status_code) == (DeliveryStatus.PENDING, attempt, answer)
            assert d.next_attempt_at is not None
            wait = (d.next_attempt_at - clock.now()).total_seconds()
            assert low <= wait <= high, wait
            clock.advance(wait - 0.5)
            notify.dispatch()  # not due yet: nothing sent
            assert len(receiver.requests) == attempt
            clock.advance(0.5)
        notify.dispatch()
        assert len(receiver.requests) == 3
    [d] = notify.deliveries(hook.id)
    assert (d.status, d.attempts, d.last_status_code, d.last_error) == (DeliveryStatus.DELIVERED, 3, 200, None)
    assert len({r.headers["x-learnloop-delivery"] for r in receiver.requests}) == 1  # one delivery, three attempts
    assert len({r.headers["x-learnloop-timestamp"] for r in receiver.requests}) == 3  # each attempt signed anew
    assert (counter(services, "retry"), counter(services, "delivered")) == (2, 1)


def test_retries_stop_after_the_last_attempt(services: Services) -> None:
    clock = start_clock()
    add_models(services, "m")
    notify = notifier(services, clock, retry=RetryPolicy(max_attempts=3, jitter=0))
    with receiving(default=502) as receiver:
        hook = notify.add_webhook(receiver.url)
        add_event(services, clock, "m", "promoted")
        for _ in range(6):
            notify.dispatch()
            clock.advance(10)
        assert len(receiver.requests) == 3
    [d] = notify.deliveries(hook.id)
    assert (d.status, d.attempts) == (DeliveryStatus.FAILED, 3)
    assert "gave up after 3 attempts" in (d.last_error or "")
    assert counter(services, "failed") == 1


def test_an_unreachable_receiver_is_retried(services: Services) -> None:
    clock = start_clock()
    add_models(services, "m")
    notify = notifier(services, clock)
    hook = notify.add_webhook(f"http://127.0.0.1:{free_port()}/gone")
    add_event(services, clock, "m", "promoted")
    notify.dispatch()
    [d] = notify.deliveries(hook.id)
    assert (d.status, d.attempts, d.last_status_code) == (DeliveryStatus.PENDING, 1, None)
    assert "ConnectError" in (d.last_error or "")


def test_a_404_endpoint_fails_permanently(services: Services) -> None:
    clock = start_clock()
    add_models(services, "m")
    notify = notifier(services, clock)
    with receiving(default=404) as receiver:
        hook = notify.add_webhook(receiver.url)
        add_event(services, clock, "m", "candidate_rejected")
        notify.dispatch()
        clock.advance(3600)
        notify.dispatch()
        assert len(receiver.requests) == 1
    [d] = notify.deliveries(hook.id)
    assert (d.status, d.attempts, d.last_status_code) == (DeliveryStatus.FAILED, 1, 404)
    assert d.next_attempt_at is None and "HTTP 404" in (d.last_error or "")
    assert notify.pending() == 0


def test_model_and_kind_filters(services: Services) -> None:
    clock = start_clock()
    add_models(services, "a", "b")
    notify = notifier(services, clock)
    with receiving() as receiver:
        notify.add_webhook(receiver.url + "/a-default", model="a")
        notify.add_webhook(receiver.url + "/steps", kinds=["rollout_step"])
        notify.add_webhook(receiver.url + "/all", kinds=["*"], format="slack")
        events = {
            ("a", "promoted"): add_event(services, clock, "a", "promoted"),
            ("b", "promoted"): add_event(services, clock, "b", "promoted"),
            ("a", "rollout_step"): add_event(services, clock, "a", "rollout_step"),
            ("a", "retrain_failed"): add_event(services, clock, "a", "retrain_failed", None),
            ("a", "policy_changed"): add_event(services, clock, "a", "policy_changed", None),
        }
        notify.dispatch()
        receiver.wait_for(8)
    got: dict[str, list[str]] = {}
    for r in receiver.requests:
        body = r.json()
        got.setdefault(r.path, []).append(r.headers["x-learnloop-event"])
        if r.path == "/all":
            assert set(body) == {"text", "blocks"}
            assert body["text"].startswith(("a: ", "b: "))
    assert sorted(got["/a-default"]) == ["promoted", "retrain_failed"]
    assert got["/steps"] == ["rollout_step"]
    assert sorted(got["/all"]) == sorted(kind for _, kind in events)


def test_two_services_on_one_database_deliver_each_event_once(
    services: Services, services_factory: Callable[..., Services]
) -> None:
    other = services_factory()  # its own engine and pool: another worker process's view
    add_models(services, "m")
    clock = start_clock()
    with receiving(delay=0.01) as receiver:
        services.notify.add_webhook(receiver.url)
        ids = [add_event(services, clock, "m", "promoted", version=i) for i in range(30)]
        errors: list[BaseException] = []

        def work(s: Services) -> None:
            deadline = time.monotonic() + 20
            try:
                while time.monotonic() < deadline and len(receiver.requests) < len(ids):
                    s.notify.dispatch()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(s,)) for s in (services, other, services, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        time.sleep(0.2)  # anything sent twice would have arrived by now
    received = Counter(orjson.loads(r.body)["id"] for r in receiver.requests)
    assert sorted(received) == ids
    assert set(received.values()) == {1}
    assert services.notify.pending() == 0


def test_a_removed_webhook_gets_nothing(services: Services) -> None:
    clock = start_clock()
    add_models(services, "m")
    notify = notifier(services, clock)
    with receiving() as kept_receiver, receiving([500]) as gone_receiver:
        kept = notify.add_webhook(kept_receiver.url)
        gone = notify.add_webhook(gone_receiver.url)
        add_event(services, clock, "m", "promoted")
        notify.dispatch()  # kept: delivered; gone: 500, to be retried ...
        notify.remove_webhook(gone.id)  # ... but not any more
        add_event(services, clock, "m", "rolled_back")
        clock.advance(3600)
        notify.dispatch()
    assert [r.headers["x-learnloop-event"] for r in kept_receiver.requests] == ["promoted", "rolled_back"]
    assert len(gone_receiver.requests) == 1
    assert [h.id for h in notify.list_webhooks()] == [kept.id]
    [history] = notify.deliveries(gone.id)  # kept for the record
    assert (history.status, history.event_kind, history.last_error) == (
        DeliveryStatus.FAILED,
        "promoted",
        "webhook removed",
    )
    with pytest.raises(NotFoundError):
        notify.remove_webhook(gone.id)
    with pytest.raises(NotFoundError):
        notify.send_test(gone.id)


def test_webhook_settings_are_checked(services: Services) -> None:
    notify = services.notify
    for url in ("ftp://example.com/x", "not a url", "http://", "example.com/hook", "http://host:port/x"):
        with pytest.raises(ValidationError) as info:
            notify.add_webhook(url)
        assert info.value.field == "url", url
    with pytest.raises(ValidationError) as info:
        notify.add_webhook("https://example.com", kinds=["Promoted!"])
    assert info.value.field == "kinds"
    with pytest.raises(ValidationError) as info:
        notify.add_webhook("https://example.com", secret="short")
    assert info.value.field == "secret"
    with pytest.raises(NotFoundError):
        notify.add_webhook("https://example.com", model="nope")
    hook = notify.add_webhook("https://example.com/hook")
    assert len(hook.secret) >= 32 and hook.kinds == ()  # generated; the default kinds
    assert notify.add_webhook("https://example.com/hook").secret != hook.secret


def test_test_delivery_is_sent_once_and_not_stored(services: Services) -> None:
    notify = services.notify
    with receiving([200, 404]) as receiver:
        hook = notify.add_webhook(receiver.url, secret=SECRET)
        assert notify.send_test(hook.id).delivered
        refused = notify.send_test(hook.id)
    assert (refused.delivered, refused.status_code) == (False, 404)
    assert [r.headers["x-learnloop-event"] for r in receiver.requests] == ["webhook_test"] * 2
    assert receiver.requests[0].headers["x-learnloop-delivery"].startswith("test-")
    assert notify.deliveries(hook.id) == []


def test_real_promotion_and_rollback_reach_a_slack_webhook(services: Services) -> None:
    create_model(services, "m")
    train = [("great food", "1"), ("awful service", "0")] * 20
    version = register_version(services, "m", train, note="a second version").version
    with receiving() as receiver:
        services.notify.add_webhook(receiver.url, model="m", format="slack")
        services.registry.promote("m", version, actor="test", reason="looks better")
        services.registry.rollback("m", actor="test", reason="it was not")
        services.worker.run_periodic(force=True)  # the worker's "notify" work
        receiver.wait_for(2)
    texts = [r.json()["text"] for r in receiver.requests]
    assert texts == [
        f"m: version {version} promoted, replacing version 1 (looks better)",
        f"m: rolled back from version {version} to version 1 (it was not)",
    ]
    assert services.notify.pending() == 0
