"""Hostile input over real HTTP: bodies past the (configured) size cap, deep JSON, list limits
out of range, malformed bodies sent without the right key, wrong methods, and model names in
paths built to reach the file system. Each answer is a 4xx problem+json with a stable code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LiveServer, ServerLauncher, create_model, make_settings
from learnloop.domain import Scope
from learnloop.services import build_services

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

API_KEY = "hostile-admin-key-0123456789abcdef"
BODY_CAP = 64 * 1024  # LEARNLOOP_MAX_BODY_BYTES for this server (the default is 4 MiB)
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    root = tmp_path_factory.mktemp("hostile")
    url = f"sqlite:///{root}/ll.db"
    services = build_services(make_settings(root / "home", url))
    try:
        create_model(services, "m")
        reader = services.access.create("reader", [Scope.PREDICT, Scope.FEEDBACK, Scope.READ], actor="test")[1]
    finally:
        services.close()
    (root / "outside.txt").write_text("not the server's")  # what a traversal would reach
    return root, url, reader


@pytest.fixture(scope="module")
def server(module_server_launcher: ServerLauncher, home: tuple[Path, str, str]) -> LiveServer:
    root, url, _ = home
    env = {"LEARNLOOP_MAX_BODY_BYTES": str(BODY_CAP)}
    return module_server_launcher.start(root / "home", url, "--api-key", API_KEY, env=env)


@pytest.fixture
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(headers={"X-API-Key": API_KEY}) as client:
        yield client


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code, body
    return body


def refused_too_large(server: LiveServer) -> float:
    """``learnloop_http_refused_total`` for bodies refused by the edge guard, before parsing."""
    total = 0.0
    for line in httpx.get(f"{server.url}/metrics", headers={"X-API-Key": API_KEY}).text.splitlines():
        if line.startswith("learnloop_http_refused_total{") and 'reason="too_large"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


# -- body size ---------------------------------------------------------------------------------


def test_a_10_mb_body_is_413_before_it_is_parsed_declared_or_streamed(server: LiveServer, admin: httpx.Client) -> None:
    before = refused_too_large(server)
    ten_mb = b'{"text": "' + b"a" * (10 * 1024 * 1024) + b'"}'
    body = problem(admin.post("/v1/models/m/predict", content=ten_mb, headers=JSON), 413, "payload_too_large")
    assert body["limit"] == BODY_CAP  # the configured cap, not the default

    def chunks() -> Iterator[bytes]:  # no Content-Length: cut off at the cap while it streams
        yield b'{"text": "'
        for _ in range(10 * 16):
            yield b"a" * 65536
        yield b'"}'

    problem(admin.post("/v1/models/m/predict", content=chunks(), headers=JSON), 413, "payload_too_large")
    assert refused_too_large(server) == before + 2  # both refused by the guard, none by a parser
    assert admin.post("/v1/models/m/predict", json={"text": "Still serving."}).status_code == 200


def test_a_body_just_under_the_configured_cap_is_served(admin: httpx.Client) -> None:
    items = [{"text": f"sentence number {i} about food, a little longer"} for i in range(BODY_CAP // 100)]
    payload = json.dumps({"items": items}).encode()
    assert BODY_CAP // 2 < len(payload) < BODY_CAP
    response = admin.post("/v1/models/m/predict/batch", content=payload, headers=JSON)
    assert response.status_code == 200, response.text


# -- JSON nesting and batch sizes --------------------------------------------------------------


def test_json_nested_past_the_limit_is_422_with_the_limit(admin: httpx.Client) -> None:
    deep = b'{"text": "x", "metadata": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}"
    body = problem(admin.post("/v1/models/m/feedback", content=deep, headers=JSON), 422, "validation_error")
    assert body["field"] == "body" and body["limit"] == 32


def test_a_batch_past_its_bound_is_422_naming_items(admin: httpx.Client) -> None:
    body = {"items": [{"text": "x"}] * 1001}
    assert problem(admin.post("/v1/models/m/predict/batch", json=body), 422, "validation_error")["field"] == "items"


# -- list limits -------------------------------------------------------------------------------

LISTS = ["/v1/jobs", "/v1/models/m/events", "/v1/models/m/rollouts", "/v1/models/m/drift", "/v1/models/m/ask"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", ["-1", "0", "1000000", str(2**70), "ten"])
def test_a_list_limit_out_of_range_is_422_naming_limit(admin: httpx.Client, path: str, limit: str) -> None:
    response = admin.get(path, params={"limit": limit})
    assert problem(response, 422, "validation_error")["field"] == "limit"


@pytest.mark.parametrize("path", LISTS)
def test_a_list_limit_in_range_is_served(admin: httpx.Client, path: str) -> None:
    assert admin.get(path, params={"limit": "1"}).status_code == 200


def test_a_query_parameter_given_twice_or_holding_a_nul_is_422(admin: httpx.Client) -> None:
    assert problem(admin.get("/v1/jobs?limit=1&limit=500"), 422, "validation_error")["field"] == "limit"
    assert problem(admin.get("/v1/jobs?model=m%00"), 422, "validation_error")["field"] == "url"
    assert admin.get("/v1/jobs?limit=1&model=m").status_code == 200


def test_a_query_parameter_a_route_takes_as_a_list_may_be_repeated(admin: httpx.Client) -> None:
    events = admin.get("/v1/models/m/events?kind=model_created&kind=promoted&limit=50")
    assert events.status_code == 200, events.text
    assert {e["kind"] for e in events.json()} == {"model_created", "promoted"}
    assert problem(admin.get("/v1/models/m/events?limit=1&limit=2"), 422, "validation_error")["field"] == "limit"


@pytest.mark.parametrize("number", [str(2**31), str(-(2**31) - 1), str(2**63)])
def test_an_id_past_what_its_column_holds_is_422(admin: httpx.Client, number: str) -> None:
    """32 bits: PostgreSQL's ``integer`` refused 2**31 with a 500; SQLite never noticed."""
    for path, field in [(f"/v1/models/m/versions/{number}", "version"), (f"/v1/webhooks/{number}/test", "webhook_id")]:
        method = "POST" if path.endswith("/test") else "GET"
        assert problem(admin.request(method, path), 422, "validation_error")["field"] == field


# -- the key before the body -------------------------------------------------------------------

MALFORMED = [
    b'{"name": "unterminated',  # not JSON
    b"\xff\xfe\x00{",  # not UTF-8
    b"[1, 2, 3]",  # JSON of the wrong shape
]


@pytest.mark.parametrize("payload", MALFORMED, ids=["broken-json", "not-utf8", "wrong-shape"])
@pytest.mark.parametrize("path", ["/v1/keys", "/v1/webhooks", "/v1/models/m/rollouts", "/v1/models/m/retrain"])
def test_a_malformed_body_to_an_admin_route_is_401_then_403_then_422(
    server: LiveServer, home: tuple[Path, str, str], path: str, payload: bytes
) -> None:
    """The credential is judged first: without a key 401, with a key lacking admin 403; only
    the admin learns what is wrong with the body."""
    with server.client() as bare:
        problem(bare.post(path, content=payload, headers=JSON), 401, "unauthorized")
    with server.client(headers={"X-API-Key": home[2]}) as reader:
        problem(reader.post(path, content=payload, headers=JSON), 403, "forbidden")
    with server.client(headers={"X-API-Key": API_KEY}) as admin:
        assert problem(admin.post(path, content=payload, headers=JSON), 422, "validation_error")["field"]


# -- methods -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/models", "GET, POST"),
        ("PUT", "/v1/models/m", "DELETE, GET"),
        ("TRACE", "/v1/keys", "GET, POST"),
        ("POST", "/health", "GET"),
    ],
)
def test_a_wrong_method_is_405_with_every_allowed_method(
    admin: httpx.Client, method: str, path: str, allow: str
) -> None:
    response = admin.request(method, path)
    problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allow


# -- model names that would be paths -----------------------------------------------------------

# Sent as raw request targets: the client neither normalises ``..`` nor decodes ``%2F``.
HOSTILE_NAMES = [
    "..",
    "%2e%2e",
    "..%2Foutside.txt",
    "..%2F..%2Foutside.txt",
    "%2e%2e%2f%2e%2e%2foutside.txt",
    "..%5C..%5Coutside.txt",
    "%2Fetc%2Fpasswd",
    "%2F..%2Foutside.txt",
    "m%00",
    "%00..%2F",
    "..%252F..%252Foutside.txt",
    "m%2F..%2F..",
]


def model_routes(server: LiveServer) -> list[tuple[str, str]]:
    """Every operation of the document whose path names a model, as (method, path template)."""
    spec = httpx.get(f"{server.url}/openapi.json").json()
    return [(method.upper(), path) for path, item in spec["paths"].items() if "{model}" in path for method in item]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_model_name_built_as_a_path_reaches_no_file(
    server: LiveServer, admin: httpx.Client, home: tuple[Path, str, str], name: str
) -> None:
    """On every route that takes a model name: a 404 or 422 problem, never a file read,
    written or deleted (the one outside the home, the model's own artifacts)."""
    root = home[0]
    before = sorted(p.relative_to(root) for p in root.rglob("*") if "server-logs" not in p.parts)
    routes = model_routes(server)
    assert len(routes) >= 30
    for method, template in routes:
        target = template.replace("{model}", name)
        for param in ("version", "rollout_id", "feedback_id", "study"):
            target = target.replace("{" + param + "}", "1")
        url = httpx.URL(server.url).copy_with(raw_path=target.encode())
        body = b"{}" if method in ("POST", "PATCH") else None
        response = admin.request(method, url, content=body, headers=JSON if body else None)
        if response.status_code == 307:  # a name ending in "/": Starlette's redirect to the path without it
            assert response.headers["location"].startswith(f"{server.url}/v1/models/"), response.headers
            continue
        assert response.status_code in (404, 422), (method, target, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), (method, target)
    assert (root / "outside.txt").read_text() == "not the server's"
    after = sorted(p.relative_to(root) for p in root.rglob("*") if "server-logs" not in p.parts)
    assert [p for p in after if p not in before and not p.name.startswith("ll.db")] == []
    assert admin.post("/v1/models/m/predict", json={"text": "Tasty."}).status_code == 200
