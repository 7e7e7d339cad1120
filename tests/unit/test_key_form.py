"""A key's form, its hash, durations, and the throttle on failed authentications (pure)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from learnloop.access import FailureThrottle, Principal, parse_duration
from learnloop.access.keys import check_name, new_key, prefix_of, secret_hash
from learnloop.domain import Scope
from learnloop.errors import ValidationError


def test_a_new_key_is_random_with_a_public_prefix_and_only_its_hash_is_kept() -> None:
    key, prefix = new_key()
    other, other_prefix = new_key()
    assert key != other and prefix != other_prefix
    assert key.startswith(prefix + "_") and prefix.startswith("ll_") and len(key) >= 24 + len(prefix)
    assert prefix_of(key) == prefix
    assert secret_hash(key) != secret_hash(other) and len(secret_hash(key)) == 64
    assert key not in secret_hash(key)
    for not_a_key in ("", "ll_", "ll_12345678", "ll_12345678x", "an-admin-key", "ll_1234_abc"):
        assert prefix_of(not_a_key) is None, not_a_key


@pytest.mark.parametrize(("text", "seconds"), [("90d", 90 * 86400), ("12h", 43200), ("30m", 1800), ("15s", 15)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0d", "-1d", "1w", "d", "1.5h", "9999999d"])
def test_bad_durations_name_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_duration(text)
    assert raised.value.field == "expires"


@pytest.mark.parametrize("name", ["", "a b", "-x", "x" * 65, "ü", "a/b"])
def test_bad_names(name: str) -> None:
    with pytest.raises(ValidationError):
        check_name(name)


def test_admin_carries_every_scope_and_models_limit_a_key() -> None:
    admin = Principal("key:root", frozenset({Scope.ADMIN}))
    assert all(admin.may(scope, "any") for scope in Scope)
    app = Principal("key:app", frozenset({Scope.PREDICT, Scope.FEEDBACK}), models=("reviews",))
    assert app.may(Scope.PREDICT, "reviews") and app.may(Scope.FEEDBACK)
    assert not app.may(Scope.PREDICT, "other") and not app.may(Scope.READ, "reviews") and not app.may(Scope.ADMIN)
    assert not app.every_model and admin.every_model


def test_the_throttle_refuses_an_address_after_its_failures_until_the_window_ends() -> None:
    now = [0.0]
    throttle = FailureThrottle(limit=3, window_seconds=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") is None
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == pytest.approx(60)
    assert throttle.retry_after("10.0.0.2") is None  # per address
    now[0] = 59.0
    assert throttle.retry_after("10.0.0.1") == pytest.approx(1)
    now[0] = 60.0
    assert throttle.retry_after("10.0.0.1") is None
    throttle.failed("10.0.0.1")  # a new window
    assert throttle.retry_after("10.0.0.1") is None


def test_the_throttle_holds_a_bounded_number_of_addresses() -> None:
    from learnloop.access.throttle import MAX_ADDRESSES

    throttle = FailureThrottle(limit=1, window_seconds=60, clock=lambda: 0.0)
    for i in range(MAX_ADDRESSES + 10):
        throttle.failed(f"a{i}")
    assert len(throttle._failures) <= MAX_ADDRESSES
