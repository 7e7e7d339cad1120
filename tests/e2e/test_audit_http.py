"""Audit over HTTP through the app (issue 17 §6): every admin action and every failed
authentication is an event in the server's trail (model ``*``) naming the key, never its
secret, with the route, client address and outcome; failures cannot flood the table; a burst
raises one event that webhooks carry; admins read the trail through the events route (and
``learnloop events --audit``), others cannot."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from conftest import create_model, make_settings, run_cli
from learnloop.app import create_app
from learnloop.config import AccessSettings, JwtSettings
from learnloop.domain import SERVER_TRAIL, Event, Scope
from learnloop.services import Services, build_services

ADMIN_KEY = "an-admin-key-of-at-least-24-characters"
JWT_SECRET = "jwt-hs256-secret-for-the-audit-test-0123456789"
BASE = "http://127.0.0.1"


@dataclass
class Server:
    services: Services
    app: FastAPI

    def call(
        self, method: str, path: str, key: str | None = ADMIN_KEY, *, client: str = "127.0.0.1", **kw: Any
    ) -> httpx.Response:
        async def go() -> httpx.Response:
            headers = {"Origin": BASE, **({"X-API-Key": key} if key else {}), **kw.pop("headers", {})}
            transport = httpx.ASGITransport(app=self.app, client=(client, 4567))
            async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http:
                return await http.request(method, path, **kw)

        return asyncio.run(go())

    def trail(self, *kinds: str) -> list[Event]:
        return self.services.registry.events(SERVER_TRAIL, 500, kinds=list(kinds) or None)


def _server(home: Path, database_url: str, **access: Any) -> Iterator[Server]:
    services = build_services(make_settings(home, database_url, api_key=ADMIN_KEY, access=AccessSettings(**access)))
    try:
        create_model(services, "m")
        services.cache.serve()
        yield Server(services, create_app(services=services))
    finally:
        services.close()


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    """On SQLite and PostgreSQL."""
    yield from _server(tmp_path / "home", database_url)


def test_admin_actions_are_events_naming_the_key_the_route_the_address_and_the_outcome(server: Server) -> None:
    ops = server.services.access.create("ops", [Scope.ADMIN], actor="test")[1]
    reader = server.services.access.create("reader", [Scope.READ], actor="test")[1]
    said = server.call("POST", "/v1/models/m/predict", json={"text": "Lovely", "subject": "alice@example.com"})
    assert said.status_code == 200
    before = {e.id for e in server.trail()}

    created = server.call("POST", "/v1/keys", ops, client="10.0.0.5", json={"name": "app", "scopes": ["predict"]})
    assert created.status_code == 201
    app_key = created.json()["key"]
    hook = server.call("POST", "/v1/webhooks", ops, client="10.0.0.5", json={"url": "http://127.0.0.1:9/h"})
    assert hook.status_code == 201
    assert server.call("DELETE", f"/v1/webhooks/{hook.json()['id']}", ops, client="10.0.0.5").status_code == 204
    patched = server.call(
        "PATCH", "/v1/models/m/policy", ops, client="10.0.0.5", json={"changes": {"retrain_every": 123}}
    )
    assert patched.status_code == 200, patched.text
    assert server.call("POST", "/v1/models/m/rollback", ops, client="10.0.0.5").status_code == 409  # nothing to
    assert server.call("DELETE", "/v1/keys/app", ops, client="10.0.0.5").status_code == 200
    assert server.call("DELETE", "/v1/subjects/alice@example.com", ops, client="10.0.0.5").status_code == 200
    assert server.call("GET", "/v1/models", reader).status_code == 200  # a read: no audit event

    actions = [e for e in reversed(server.trail("admin_action")) if e.id not in before]
    assert [(e.data["method"], e.data["route"], e.data["status"]) for e in actions] == [
        ("POST", "/v1/keys", 201),
        ("POST", "/v1/webhooks", 201),
        ("DELETE", "/v1/webhooks/{webhook_id}", 204),
        ("PATCH", "/v1/models/{model}/policy", 200),
        ("POST", "/v1/models/{model}/rollback", 409),
        ("DELETE", "/v1/keys/{name}", 200),
        ("DELETE", "/v1/subjects/{subject}", 200),
    ]
    assert {e.actor for e in actions} == {"key:ops"}
    assert {e.data["address"] for e in actions} == {"10.0.0.5"}
    assert [e.data["outcome"] for e in actions] == ["succeeded"] * 4 + ["failed", "succeeded", "succeeded"]
    # A subject is kept as the erasure event keeps it (the start of its SHA-256), never in clear.
    erased = next(e for e in server.services.registry.events("m", 50) if e.kind == "subject_erased")
    assert actions[6].data["params"] == {"subject": f"sha256:{erased.data['subject']}"}
    assert actions[3].data["params"] == {"model": "m"} and actions[5].data["params"] == {"name": "app"}
    keys = [(e.kind, e.data["name"], e.actor) for e in reversed(server.trail("key_created", "key_revoked"))]
    assert ("key_created", "app", "key:ops") in keys and ("key_revoked", "app", "key:ops") in keys
    trail = "\n".join(str(e) for e in server.trail())
    for secret in (ops, reader, app_key, ADMIN_KEY, "alice@example.com"):
        assert secret not in trail
    # The model's own trail keeps its story: the policy change, no audit rows.
    assert not [e for e in server.services.registry.events("m", 500) if e.kind == "admin_action"]


def test_the_server_trail_is_read_by_admins_through_the_events_route_with_a_kind_filter(server: Server) -> None:
    reader = server.services.access.create("reader", [Scope.READ], actor="test")[1]
    scoped_admin = server.services.access.create("m-admin", [Scope.ADMIN], models=["m"], actor="test")[1]
    server.call("POST", "/v1/keys", ADMIN_KEY, json={"name": "x", "scopes": ["read"]})

    answer = server.call("GET", "/v1/models/*/events", ADMIN_KEY, params={"kind": ["admin_action"]})
    assert answer.status_code == 200
    assert [e["kind"] for e in answer.json()] == ["admin_action"]
    assert answer.json()[0]["actor"] == "api-key" and answer.json()[0]["model"] == "*"
    both = server.call("GET", "/v1/models/*/events", ADMIN_KEY, params={"kind": ["admin_action", "key_created"]})
    assert {e["kind"] for e in both.json()} == {"admin_action", "key_created"}
    for key in (reader, scoped_admin):  # a read key, and an admin key limited to a model
        refused = server.call("GET", "/v1/models/*/events", key)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    refusals = [e for e in server.trail("auth_failure") if e.data["route"] == "/v1/models/{model}/events"]
    assert {(e.actor, e.data["reason"]) for e in refusals} == {
        ("key:reader", "forbidden"),
        ("key:m-admin", "forbidden"),
    }
    # A model named in a query, not the path, is checked and audited alike.
    assert server.call("GET", "/v1/jobs", scoped_admin, params={"model": "other"}, client="10.0.0.8").status_code == 403
    assert next(e.data["route"] for e in server.trail("auth_failure")) == "/v1/jobs"
    # The dashboard's first page shows the trail to an admin of every model, to no one else.
    page = server.call("GET", "/dashboard", ADMIN_KEY)
    assert page.status_code == 200 and "Audit trail" in page.text and "admin action" in page.text
    for key in (reader, scoped_admin):
        page = server.call("GET", "/dashboard", key)
        assert page.status_code == 200 and "Audit trail" not in page.text
    # the kind filter works on a model's trail too
    promoted = server.call("GET", "/v1/models/m/events", reader, params={"kind": "promoted"})
    assert promoted.status_code == 200 and {e["kind"] for e in promoted.json()} == {"promoted"}


def test_authentication_failures_are_events_bounded_per_address_and_window(tmp_path: Path, database_url: str) -> None:
    jwt_settings = JwtSettings("https://id.test/", "learnloop", secret=JWT_SECRET)
    for server in _server(tmp_path / "home", database_url, failure_limit=5, audit_failure_events=4, jwt=jwt_settings):
        reader = server.services.access.create("reader", [Scope.READ], actor="test")[1]
        for _ in range(12):  # 5 wrong keys, then 7 answered 429 by the throttle
            server.call("GET", "/v1/models", "wrong-key-" + "x" * 30, client="10.0.0.1")
        assert server.call("GET", "/v1/models", reader, client="10.0.0.1").status_code == 429
        assert server.call("POST", "/v1/models/m/rollback", reader, client="10.0.0.2").status_code == 403
        claims = {"iss": "https://id.test/", "aud": "learnloop", "sub": "svc", "scope": "read", "exp": 1}
        expired = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
        bearer = {"Authorization": f"Bearer {expired}"}
        assert server.call("GET", "/v1/models", None, client="10.0.0.3", headers=bearer).status_code == 401
        login = server.call("POST", "/dashboard/login", None, client="10.0.0.4", data={"key": "nope" * 8})
        assert login.status_code == 401
        assert server.call("GET", "/v1/models", "another-wrong-key-xxxxxxxxxx", client="10.0.0.9").status_code == 401

        failed = list(reversed(server.trail("auth_failure")))
        # One event per address and reason within the window, four in all (the fifth address
        # was past audit_failure_events): not 12 for the first address.
        assert [(e.data["address"], e.data["reason"], e.actor) for e in failed] == [
            ("10.0.0.1", "bad_key", "unauthenticated"),
            ("10.0.0.2", "forbidden", "key:reader"),
            ("10.0.0.3", "bad_token", "unauthenticated"),
            ("10.0.0.4", "login_failed", "unauthenticated"),
        ]
        assert failed[0].data["route"] == "/v1/models" and failed[1].data["route"] == "/v1/models/{model}/rollback"
        assert "token_expired" in (failed[2].reason or "")
        assert all(e.data["outcome"] == "refused" for e in failed)
        metrics = server.call("GET", "/metrics").text
        counted = {
            line.split('reason="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("learnloop_auth_failures_total{")
        }
        assert counted == {"bad_key": 6.0, "throttled": 8.0, "forbidden": 1.0, "bad_token": 1.0, "login_failed": 1.0}
        trail = "\n".join(str(e) for e in server.trail())
        for secret in ("wrong-key-", reader, expired, "nope" * 8, "another-wrong-key"):
            assert secret not in trail
        assert not server.trail("auth_failure_burst")  # 17 failures: under the default 50


def test_a_burst_of_failures_raises_one_event_that_webhooks_carry(tmp_path: Path) -> None:
    for server in _server(tmp_path / "home", f"sqlite:///{tmp_path}/ll.db", failure_limit=3, burst_threshold=20):
        asked = server.services.notify.add_webhook("http://127.0.0.1:9/burst", kinds=["auth_failure_burst"])
        default = server.services.notify.add_webhook("http://127.0.0.1:9/default")
        other = server.services.notify.add_webhook("http://127.0.0.1:9/other", kinds=["promoted"])
        for i in range(60):  # 10 addresses: 3 wrong keys each, then refused by the throttle
            server.call("GET", "/v1/models", f"wrong-{i:02d}-" + "k" * 30, client=f"10.1.0.{i % 10}")

        bursts = server.trail("auth_failure_burst")
        assert len(bursts) == 1  # one event, not one per failure past the threshold
        burst = bursts[0]
        assert burst.data["failures"] == 20 and burst.data["addresses"] == 10
        assert set(burst.data["reasons"]) <= {"bad_key", "throttled"} and burst.data["window_seconds"] == 60.0
        assert "20 failed authentications" in (burst.reason or "")
        server.services.notify.collect()
        assert [d.event_kind for d in server.services.notify.deliveries(asked.id)] == ["auth_failure_burst"]
        assert [d.event_kind for d in server.services.notify.deliveries(default.id)] == ["auth_failure_burst"]
        assert server.services.notify.deliveries(other.id) == []


def test_learnloop_events_audit_shows_the_server_trail(server: Server, tmp_path: Path) -> None:
    server.call("GET", "/v1/models", "wrong-key-" + "x" * 30, client="10.0.0.7")
    server.call("POST", "/v1/keys", ADMIN_KEY, json={"name": "cli-seen", "scopes": ["read"]})
    settings = server.services.settings
    proc = run_cli(
        "events", "--audit", "--home", settings.home, "--database-url", settings.resolved_database_url, timeout=60
    )
    assert "audit trail" in proc.stdout
    for text in ("auth_failure", "10.0.0.7", "admin_action", "api-key", "key_created"):
        assert text in proc.stdout, proc.stdout
    only = run_cli(
        "events", "--audit", "--kind", "auth_failure", "--home", settings.home,
        "--database-url", settings.resolved_database_url, timeout=60,
    )  # fmt: skip
    assert "auth_failure" in only.stdout and "admin_action" not in only.stdout


def test_webhook_urls_are_shown_whole_once_then_masked(server: Server) -> None:
    url = f"https://hooks.slack.com/services/T0AUDIT/B0AUDIT/{'s' * 24}"
    created = server.call("POST", "/v1/webhooks", json={"url": url, "format": "slack"})
    assert created.status_code == 201 and created.json()["url"] == url  # the registration's answer, once
    listed = server.call("GET", "/v1/webhooks").json()
    assert [w["url"] for w in listed] == ["https://hooks.slack.com/..."]
    settings = server.services.settings
    shown = run_cli("webhooks", "list", "--home", settings.home, "--database-url", settings.resolved_database_url)
    assert "hooks.slack.com/..." in shown.stdout and "T0AUDIT" not in shown.stdout
