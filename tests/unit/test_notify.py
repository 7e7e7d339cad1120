"""Notifications, pure parts: signatures, payloads for every kind, the backoff schedule and
how far the event cursor may move."""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from learnloop.domain import Event, kind_matches
from learnloop.notify import DEFAULT_KINDS, RetryPolicy, Webhook, json_body, sign, slack_body, summary, verify_signature
from learnloop.notify.payloads import SUMMARIES, encode, link
from learnloop.notify.service import next_cursor
from learnloop.retry import parse_retry_after

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "a-secret-of-enough-length"


def event(kind: str, *, id: int = 7, version: int | None = 3, data: dict[str, object] | None = None) -> Event:
    return Event(id, "sentiment", kind, version, "rollout:2", "schedule complete with no harm", data or {}, T0)


# -- signatures ------------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"kind":"promoted"}'
    expected = hmac.new(SECRET.encode(), b"1767225600." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1767225600, body) == f"sha256={expected}"


def test_a_signed_body_verifies() -> None:
    body = encode(event("promoted"), "json")
    signature = sign(SECRET, 1000, body)
    assert verify_signature(SECRET, "1000", body, signature, now=1010)


@pytest.mark.parametrize(
    ("body", "secret", "timestamp", "now"),
    [
        (b'{"kind":"rolled_back"}', SECRET, "1000", 1000),  # tampered body
        (b'{"kind":"promoted"}', "another-secret-entirely", "1000", 1000),  # wrong secret
        (b'{"kind":"promoted"}', SECRET, "1001", 1001),  # timestamp changed after signing
        (b'{"kind":"promoted"}', SECRET, "1000", 1000 + 301),  # too old: a replay
        (b'{"kind":"promoted"}', SECRET, "not-a-number", 1000),
    ],
)
def test_a_tampered_or_stale_request_does_not_verify(body: bytes, secret: str, timestamp: str, now: float) -> None:
    signature = sign(SECRET, 1000, b'{"kind":"promoted"}')
    assert not verify_signature(secret, timestamp, body, signature, 300, now=now)


def test_a_malformed_signature_does_not_verify() -> None:
    assert not verify_signature(SECRET, 1000, b"{}", "md5=abc", now=1000)
    assert not verify_signature(SECRET, 1000, b"{}", "", now=1000)


# -- payloads --------------------------------------------------------------------------------

KINDS = [*SUMMARIES, "something_new"]
WORDS = set(
    [
        "promoted",
        "rolled",
        "rejected",
        "abandoned",
        "registered",
        "created",
        "changed",
        "queued",
        "failed",
        "cancelled",
        "started",
        "stepped",
        "paused",
        "resumed",
        "stopped",
        "concluded",
        "drift",
        "accuracy",
        "rating",
        "test",
        "something",
    ]
)


@pytest.mark.parametrize("kind", KINDS)
def test_slack_text_names_model_version_and_what_happened(kind: str) -> None:
    e = event(kind)
    body = slack_body(e)
    text = body["text"]
    assert text.startswith("sentiment: ")
    assert "version 3" in text
    assert "\n" not in text
    assert WORDS & set(text.replace("(", " ").split()), text
    assert body["blocks"][0]["type"] == "section"
    assert kind in body["blocks"][0]["text"]["text"]
    assert link(e) in body["blocks"][1]["elements"][0]["text"]
    assert orjson.loads(encode(e, "slack")) == body


def test_promoted_summary_reads_like_a_sentence() -> None:
    e = event("promoted", data={"previous": 2, "rollout": 2, "stats": {"strategy": "canary"}})
    assert summary(e) == (
        "sentiment: version 3 promoted, replacing version 2 (canary rollout 2: schedule complete with no harm)"
    )
    back = event("rolled_back", version=2, data={"from": 3, "to": 2})
    assert summary(back) == "sentiment: rolled back from version 3 to version 2 (schedule complete with no harm)"
    step = event("rollout_step", data={"rollout": 2, "from": 0.05, "to": 0.25})
    assert "from 5% to 25%" in summary(step)


def test_long_reasons_are_cut_to_one_line() -> None:
    e = Event(1, "m", "candidate_rejected", 4, "job:1", "not better\n" * 200, {}, T0)
    text = summary(e)
    assert "\n" not in text and len(text) < 400 and text.endswith("...)")


def test_json_body_carries_the_event_and_a_link() -> None:
    e = event("promoted", data={"previous": 2})
    body = json_body(e)
    assert body == {
        "id": 7,
        "model": "sentiment",
        "kind": "promoted",
        "version": 3,
        "actor": "rollout:2",
        "reason": "schedule complete with no harm",
        "data": {"previous": 2},
        "created_at": "2026-03-01T12:00:00+00:00",
        "summary": summary(e),
        "link": "/v1/models/sentiment/events?after_id=6",
    }


def test_webhook_filters_by_model_and_kind() -> None:
    hook = Webhook(1, "http://x", "sentiment", (), "json", True, T0, SECRET)
    assert hook.wants(event("promoted"))
    assert hook.wants(event("evaluate_failed"))  # any job failure is in the default set
    assert not hook.wants(event("rollout_step"))
    assert not hook.wants(Event(1, "other", "promoted", 1, "a", None, {}, T0))
    assert Webhook(1, "http://x", None, ("*",), "json", True, T0, SECRET).wants(event("rollout_step"))
    assert not Webhook(1, "http://x", None, ("*",), "json", False, T0, SECRET).wants(event("promoted"))
    assert kind_matches("rollout_step", ["rollout_step"]) and not kind_matches("x_failed", ["promoted"])
    assert "promoted" in DEFAULT_KINDS and "rolled_back" in DEFAULT_KINDS


# -- backoff ---------------------------------------------------------------------------------


def test_backoff_doubles_from_one_second_up_to_the_cap() -> None:
    policy = RetryPolicy(base=1, factor=2, cap=60, max_attempts=10, jitter=0)
    rng = random.Random(0)
    assert [policy.delay(n, rng) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert policy.delay(10, rng) is None  # attempts spent


def test_jitter_stays_within_its_band_and_varies() -> None:
    policy = RetryPolicy(jitter=0.2)
    rng = random.Random(1)
    delays = [policy.delay(3, rng) for _ in range(200)]
    assert all(d is not None and 3.2 <= d <= 4.8 for d in delays)
    assert len(set(delays)) > 100


def test_retry_after_wins_when_longer_and_is_capped() -> None:
    policy = RetryPolicy(jitter=0, max_retry_after=120)
    rng = random.Random(0)
    assert policy.delay(1, rng, retry_after=30) == 30
    assert policy.delay(4, rng, retry_after=0.5) == 8
    assert policy.delay(1, rng, retry_after=10_000) == 120


def test_retry_after_header_forms() -> None:
    assert parse_retry_after("12", T0) == 12
    assert parse_retry_after((T0 + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT"), T0) == 90
    assert parse_retry_after("soon", T0) is None
    assert parse_retry_after(None, T0) is None


def test_retry_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(base=0)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.5)


# -- the cursor ------------------------------------------------------------------------------


def test_cursor_moves_over_consecutive_ids_and_waits_at_a_young_gap() -> None:
    now = T0.timestamp()
    young = [Event(i, "m", "promoted", 1, "a", None, {}, T0 - timedelta(seconds=1)) for i in (11, 12, 14, 15)]
    assert next_cursor(10, young, now, grace=30) == 12  # 13 may still commit
    old = [Event(i, "m", "promoted", 1, "a", None, {}, T0 - timedelta(seconds=60)) for i in (11, 12, 14, 15)]
    assert next_cursor(10, old, now, grace=30) == 15  # 13 was rolled back: skip it
    assert next_cursor(10, [], now, grace=30) == 10
