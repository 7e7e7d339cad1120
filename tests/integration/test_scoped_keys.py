"""Scoped keys and dashboard sessions on a migrated real database (SQLite file, PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from learnloop.clock import FakeClock
from learnloop.config import Settings
from learnloop.domain import Scope
from learnloop.errors import ConflictError, NotFoundError
from learnloop.services import build_services
from learnloop.store import tables as t


def test_keys_are_stored_as_hashes_found_by_prefix_listed_and_revoked(settings: Settings) -> None:
    clock = FakeClock()
    services = build_services(settings, clock=clock)
    try:
        access = services.access
        assert not access.required()
        key, secret = access.create(
            "app", [Scope.FEEDBACK, Scope.PREDICT], models=["m"], expires_in=timedelta(days=90), actor="cli:ann"
        )
        assert access.required()
        assert key.scopes == (Scope.PREDICT, Scope.FEEDBACK) and key.models == ("m",)
        assert key.expires_at == clock.now() + timedelta(days=90) and key.created_by == "cli:ann"
        with services.db.read() as conn:
            stored = conn.execute(select(t.api_keys)).mappings().one()
        assert secret not in str(dict(stored)) and stored["prefix"] == key.prefix
        principal = access.authenticate(secret)
        assert principal is not None and principal.name == "key:app" and principal.may(Scope.PREDICT, "m")
        assert access.authenticate(secret + "x") is None and access.authenticate(key.prefix) is None
        with pytest.raises(ConflictError):
            access.create("app", [Scope.READ], actor="cli:ann")
        assert [k.name for k in access.list_keys()] == ["app"]

        token = access.open_session(principal)
        assert access.session(token) == principal and access.session(token + "x") is None
        revoked = access.revoke("app", actor="cli:ann")
        assert revoked.revoked_at == clock.now()
        assert access.authenticate(secret) is None and access.session(token) is None
        assert access.list_keys() == [] and [k.name for k in access.list_keys(include_revoked=True)] == ["app"]
        with pytest.raises(NotFoundError):
            access.revoke("app", actor="cli:ann")
        again, _ = access.create("app", [Scope.READ], actor="cli:ann")  # the name is free once revoked
        assert again.prefix != key.prefix
        assert access.required()  # auth, once on, stays on
    finally:
        services.close()


def test_sessions_end_at_logout_and_expire(settings: Settings) -> None:
    clock = FakeClock()
    services = build_services(settings.with_overrides(api_key="an-admin-key-that-is-long-enough"), clock=clock)
    try:
        access = services.access
        admin = access.authenticate("an-admin-key-that-is-long-enough")
        assert admin is not None and admin.name == "api-key" and admin.may(Scope.ADMIN)
        first, second = access.open_session(admin), access.open_session(admin)
        assert first != second  # random, not derived from the key
        access.close_session(first)
        assert access.session(first) is None and access.session(second) == admin
        clock.advance(access.settings.session_seconds + 1)
        assert access.session(second) is None
    finally:
        services.close()


def test_serve_on_a_reachable_host_needs_keys_and_refuses_a_weak_admin_key(settings: Settings) -> None:
    import typer

    from learnloop.cli.serve import _access

    with pytest.raises(typer.Exit):  # no key at all
        _access(settings, "0.0.0.0", None, None)
    with pytest.raises(typer.Exit):  # an admin key under 24 characters
        _access(settings, "0.0.0.0", "short-admin-key", None)
    loopback = _access(settings, "127.0.0.1", "short-admin-key", None)  # on loopback, as before
    assert not loopback.require_keys and set(loopback.allowed_hosts) == {"localhost", "127.0.0.1", "::1"}
    strong = _access(settings, "0.0.0.0", "k" * 24, ["box.example,Other.example"])
    assert strong.require_keys and {"box.example", "other.example", "0.0.0.0", "localhost"} <= set(strong.allowed_hosts)
    services = build_services(settings)
    try:
        services.access.create("app", [Scope.PREDICT], actor="test")
    finally:
        services.close()
    assert _access(settings, "0.0.0.0", None, None).require_keys  # a scoped key in the database is enough
