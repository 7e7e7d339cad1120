"""Who may call what, over HTTP through the app: a table built from the app's own route list.

Every route declares the scope its key needs (``api.deps.Need``) or is one of the few public
ones; a route that declares neither fails ``test_every_route_declares_a_scope``. Then, on a
server with keys, each route is called without a key (401), with a key of another scope (403),
with a key of its scope limited to another model (403 where the path names a model), and with
keys that may (never 401 or 403). The model named is one that does not exist, so nothing is
changed by the calls that get through (they answer 404 or 422)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from conftest import make_settings
from learnloop.api.deps import PUBLIC_PATHS, app_routes, declared_needs
from learnloop.app import create_app
from learnloop.config import AccessSettings
from learnloop.domain import Scope
from learnloop.services import Services, build_services

ADMIN_KEY = "an-admin-key-of-at-least-24-characters"
BASE = "http://127.0.0.1"
SAMPLE = {"model": "ghost", "action": "pause", "job_id": "x1", "feedback_id": "f1", "subject": "s1", "name": "nobody"}
OTHER_SCOPE = {
    Scope.PREDICT: Scope.READ,
    Scope.FEEDBACK: Scope.PREDICT,
    Scope.READ: Scope.FEEDBACK,
    Scope.LABEL: Scope.READ,
    Scope.ADMIN: Scope.READ,
}


@dataclass
class Server:
    services: Services
    app: FastAPI
    keys: dict[str, str]

    def call(self, method: str, path: str, key: str | None = None, **kwargs: object) -> httpx.Response:
        return asyncio.run(self.acall(method, path, key, **kwargs))

    async def acall(
        self, method: str, path: str, key: str | None = None, *, client: str = "127.0.0.1", **kwargs: object
    ) -> httpx.Response:
        headers = {"Origin": BASE}
        if key is not None:
            headers["X-API-Key"] = key
        transport = httpx.ASGITransport(app=self.app, client=(client, 123))
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http:
            return await http.request(method, path, **kwargs)  # type: ignore[arg-type]


def _served(home: Path, **settings: object) -> tuple[Services, FastAPI]:
    services = build_services(make_settings(home, f"sqlite:///{home}/ll.db", **settings))
    return services, create_app(services=services)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    services, app = _served(
        tmp_path_factory.mktemp("scopes"), api_key=ADMIN_KEY, access=AccessSettings(failure_limit=5)
    )
    keys = {"legacy-admin": ADMIN_KEY}
    for scope in Scope:
        keys[scope.value] = services.access.create(f"only-{scope.value}", [scope], actor="test")[1]
        keys[f"{scope.value}@other"] = services.access.create(
            f"{scope.value}-other", [scope], models=["other"], actor="test"
        )[1]
    try:
        yield Server(services, app, keys)
    finally:
        services.close()


def routes(app: FastAPI) -> list[tuple[str, str, Scope | None]]:
    """(method, path with sample values, declared scope or None for a public route)."""
    table = []
    for route in app_routes(app.routes):
        path = route.path or ""
        needs = declared_needs(route)
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            table.append((method, _sample(path), needs[0].scope if needs else None))
    return table


def _sample(path: str) -> str:
    if path == "/docs/assets":
        return "/docs/assets/favicon.png"
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLE.get(m.group(1), "1"), path)


def _body(method: str, path: str) -> dict[str, object]:
    if method in ("GET", "DELETE"):
        return {}
    if path.startswith("/dashboard"):
        return {"data": {"reason": "test"}}
    return {"json": {}}


def test_every_route_declares_a_scope(server: Server) -> None:
    undeclared = []
    for route in app_routes(server.app.routes):
        needs = declared_needs(route)
        if route.path in PUBLIC_PATHS:
            assert not needs, f"{route.path} is public but declares {needs}"
        elif len(needs) != 1:
            undeclared.append((route.path, route.methods, len(needs)))
    assert not undeclared, f"routes without exactly one declared scope (api.deps.Need): {undeclared}"
    assert len(routes(server.app)) > 60


def test_each_route_needs_its_declared_scope_over_http(server: Server) -> None:
    checked: dict[Scope, int] = dict.fromkeys(Scope, 0)
    for method, path, scope in routes(server.app):
        if scope is None:
            if method == "GET":  # a public page: no key needed even though the server has keys
                assert server.call(method, path).status_code not in (401, 403), path
            continue
        body = _body(method, path)
        where = f"{method} {path} ({scope})"
        refused = server.call(method, path, **body)
        assert refused.status_code == 401, (where, refused.text[:300])
        if not path.startswith("/dashboard"):
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["code"] == "unauthorized"
        wrong = server.call(method, path, server.keys[OTHER_SCOPE[scope]], **body)
        assert wrong.status_code == 403, (where, wrong.text[:300])
        if "/ghost" in path:
            elsewhere = server.call(method, path, server.keys[f"{scope.value}@other"], **body)
            assert elsewhere.status_code == 403, (where, elsewhere.text[:300])
        for who in (scope.value, "admin", "legacy-admin"):
            allowed = server.call(method, path, server.keys[who], **body)
            assert allowed.status_code not in (401, 403), (where, who, allowed.status_code, allowed.text[:300])
        checked[scope] += 1
    assert all(checked.values()), checked


def test_bearer_works_as_the_header_and_a_wrong_key_is_401(server: Server) -> None:
    ok = server.call("GET", "/v1/models", headers={"Authorization": f"Bearer {server.keys['read']}"})
    assert ok.status_code == 200, ok.text
    for wrong in ("nope", server.keys["read"][:-1] + "x", "ll_00000000_" + "a" * 43):
        answer = server.call("GET", "/v1/models", wrong)
        assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
        assert answer.headers["www-authenticate"] == "Bearer"


def test_a_model_limited_key_sees_only_its_models(tmp_path: Path) -> None:
    from conftest import create_model

    services, app = _served(tmp_path / "home", api_key=ADMIN_KEY)
    try:
        create_model(services, "mine")
        create_model(services, "theirs")
        key = services.access.create("reader", [Scope.READ], models=["mine"], actor="test")[1]
        server = Server(services, app, {})
        listed = server.call("GET", "/v1/models", key)
        assert [m["name"] for m in listed.json()] == ["mine"]
        assert server.call("GET", "/v1/models/mine", key).status_code == 200
        assert server.call("GET", "/v1/models/theirs", key).status_code == 403
        assert server.call("GET", "/v1/models/theirs", ADMIN_KEY).status_code == 200
    finally:
        services.close()


def test_a_revoked_or_expired_key_stops_at_once(tmp_path: Path) -> None:
    from learnloop.clock import FakeClock

    home = tmp_path / "home"
    clock = FakeClock()
    services = build_services(make_settings(home, f"sqlite:///{home}/ll.db"), clock=clock)
    try:
        app = create_app(services=services)
        server = Server(services, app, {})
        assert server.call("GET", "/v1/models").status_code == 200  # loopback without keys: open
        from datetime import timedelta

        short = services.access.create("short", [Scope.READ], expires_in=timedelta(hours=1), actor="test")[1]
        kept = services.access.create("kept", [Scope.READ], actor="test")[1]
        assert server.call("GET", "/v1/models").status_code == 401  # a key exists: auth is on
        assert server.call("GET", "/v1/models", short).status_code == 200
        clock.advance(3601)
        assert server.call("GET", "/v1/models", short).status_code == 401
        assert server.call("GET", "/v1/models", kept).status_code == 200
        services.access.revoke("kept", actor="test")
        assert server.call("GET", "/v1/models", kept).status_code == 401
        assert server.call("GET", "/health").status_code == 200
    finally:
        services.close()


def test_keys_over_the_api(server: Server) -> None:
    admin = server.keys["admin"]
    created = server.call(
        "POST", "/v1/keys", admin, json={"name": "app", "scopes": ["predict", "feedback"], "expires": "90d"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["key"].startswith(body["prefix"] + "_") and body["scopes"] == ["predict", "feedback"]
    assert body["created_by"] == "key:only-admin" and body["expires_at"] is not None
    listed = server.call("GET", "/v1/keys", admin).json()
    assert "app" in [k["name"] for k in listed] and all("key" not in k for k in listed)
    assert body["key"] not in str(listed)
    again = server.call("POST", "/v1/keys", admin, json={"name": "app", "scopes": ["read"]})
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    for bad in (
        {"name": "app2", "scopes": []},
        {"name": "bad name", "scopes": ["read"]},
        {"name": "x", "scopes": ["root"]},
    ):
        assert server.call("POST", "/v1/keys", admin, json=bad).status_code == 422, bad
    assert (
        server.call("POST", "/v1/keys", admin, json={"name": "y", "scopes": ["read"], "expires": "soon"}).status_code
        == 422
    )
    assert (
        server.call("POST", "/v1/keys", server.keys["admin@other"], json={"name": "z", "scopes": ["admin"]}).status_code
        == 403
    )
    assert server.call("DELETE", "/v1/keys/app", admin).json()["revoked_at"] is not None
    assert server.call("GET", "/v1/models", body["key"]).status_code == 401
    assert server.call("DELETE", "/v1/keys/app", admin).status_code == 404


def test_repeated_failures_from_one_address_are_throttled(server: Server) -> None:
    async def tries() -> list[int]:
        return [
            (await server.acall("GET", "/v1/models", f"wrong-{i}", client="10.9.8.7")).status_code for i in range(7)
        ]

    statuses = asyncio.run(tries())
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429], statuses
    blocked = asyncio.run(server.acall("GET", "/v1/models", server.keys["read"], client="10.9.8.7"))
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
    assert blocked.json()["code"] == "too_many_failures"
    assert server.call("GET", "/v1/models", server.keys["read"]).status_code == 200  # another address


def test_a_request_naming_another_host_is_refused_on_every_route_keys_or_not(tmp_path: Path) -> None:
    """DNS rebinding: a page elsewhere reaches a loopback server under its own name."""
    services, app = _served(tmp_path / "home")  # no keys: the loopback default
    try:
        server = Server(services, app, {})
        for method, path, _ in routes(app):
            for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", ""):
                answer = server.call(method, path, headers={"Host": host}, **_body(method, path))
                assert answer.status_code == 400, (method, path, host, answer.status_code)
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.json()["code"] == "invalid_host"
        for host in ("localhost", "localhost:8000", "127.0.0.1:1", "[::1]:8000", "LOCALHOST"):
            assert server.call("GET", "/v1/models", headers={"Host": host}).status_code == 200, host
    finally:
        services.close()


def test_configured_host_names_and_any() -> None:
    from learnloop.api.hosts import host_name

    assert [host_name(h) for h in ("a.example:80", "[::1]:8000", "::1", "A.Example.", "")] == [
        "a.example",
        "::1",
        "::1",
        "a.example",
        "",
    ]
