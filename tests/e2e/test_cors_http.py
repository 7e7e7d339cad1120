"""CORS for browser clients over real HTTP (issue 17 §5): a ``learnloop serve`` started with
``--cors-origin`` answers pages of those origins with the CORS headers (the rate-limit headers
and Retry-After exposed, credentials not allowed), others without; a preflight is answered
before any key is asked for, and still only for the allowed hosts; a server started without
the option sends no CORS header at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer, ServerLauncher, init_home, run_cli
from learnloop.config import Settings, cors_origins
from learnloop.errors import ValidationError

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ADMIN_KEY = "an-admin-key-of-at-least-24-characters"
APP = "https://app.example.com"
DEV = "http://localhost:5173"
EVIL = "https://evil.example.net"


@pytest.fixture(scope="module")
def servers(
    module_server_launcher: ServerLauncher, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, LiveServer]]:
    home = tmp_path_factory.mktemp("cors") / "home"
    database_url = f"sqlite:///{home / 'learnloop.db'}"
    init_home(home, database_url)
    env = {"LEARNLOOP_API_KEY": ADMIN_KEY}
    with_cors = module_server_launcher.start(
        home, database_url, "--cors-origin", APP, "--cors-origin", DEV, "--rate-limit", "1000/s", env=env
    )
    plain = module_server_launcher.start(home, database_url, "--rate-limit", "1000/s", env=env)
    yield {"cors": with_cors, "plain": plain}


def _cors_headers(answer: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in answer.headers.items() if k.startswith("access-control-")}


def test_an_allowed_origin_gets_the_headers_with_rate_limits_exposed(servers: dict[str, LiveServer]) -> None:
    with servers["cors"].client() as http:
        for origin in (APP, DEV):
            answer = http.get("/v1/models", headers={"Origin": origin, "X-API-Key": ADMIN_KEY})
            assert answer.status_code == 200
            assert answer.headers["access-control-allow-origin"] == origin
            exposed = {h.strip().lower() for h in answer.headers["access-control-expose-headers"].split(",")}
            assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after"} <= exposed
            assert "ratelimit-remaining" in answer.headers  # what the page can now read
            assert "access-control-allow-credentials" not in answer.headers  # keys, not cookies
        # A refusal reaches the page readable too: it can tell a missing key from a dead server.
        refused = http.get("/v1/models", headers={"Origin": APP})
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == APP


def test_another_origin_gets_no_cors_header(servers: dict[str, LiveServer]) -> None:
    with servers["cors"].client() as http:
        answer = http.get("/v1/models", headers={"Origin": EVIL, "X-API-Key": ADMIN_KEY})
        assert answer.status_code == 200  # the server answers; the browser withholds it from the page
        # No Allow-Origin: the page may not read it (Starlette still names the exposed headers,
        # which grant nothing without it).
        assert set(_cors_headers(answer)) <= {"access-control-expose-headers"}
        preflight = http.options(
            "/v1/models/m/predict", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status_code == 400 and "access-control-allow-origin" not in preflight.headers
        assert preflight.headers["content-type"] == "application/problem+json"
        assert preflight.json()["code"] == "cors_refused" and "origin" in preflight.json()["detail"]


def test_a_preflight_with_authorization_needs_no_key_but_an_allowed_host(servers: dict[str, LiveServer]) -> None:
    asked = {
        "Origin": APP,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    with servers["cors"].client() as http:
        preflight = http.options("/v1/models/m/predict", headers=asked)
        assert preflight.status_code == 200, preflight.text  # not 401: a preflight carries no key
        assert preflight.headers["access-control-allow-origin"] == APP
        assert "POST" in preflight.headers["access-control-allow-methods"]
        allowed = {h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "x-api-key"} <= allowed
        assert "access-control-allow-credentials" not in preflight.headers
        # Then the request itself, as the browser sends it.
        answer = http.post(
            "/v1/models/m/predict",
            json={"text": "lovely"},
            headers={"Origin": APP, "Authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == APP
        # The Host check still comes first: a rebinding name is refused, preflight or not.
        rebound = http.options("/v1/models/m/predict", headers={**asked, "Host": "rebind.evil.example"})
        assert rebound.status_code == 400 and rebound.json()["code"] == "invalid_host"
        assert "access-control-allow-origin" not in rebound.headers


def test_without_cors_origins_no_cors_header_is_ever_sent(servers: dict[str, LiveServer]) -> None:
    with servers["plain"].client() as http:
        answers = [
            http.get("/v1/models", headers={"Origin": APP, "X-API-Key": ADMIN_KEY}),
            http.get("/v1/models", headers={"Origin": APP}),
            http.options(
                "/v1/models/m/predict",
                headers={
                    "Origin": APP,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization",
                },
            ),
        ]
        assert [a.status_code for a in answers][:2] == [200, 401]
        for answer in answers:
            assert _cors_headers(answer) == {}


def test_origins_are_checked_when_given(tmp_path: Path) -> None:
    assert cors_origins([f"{APP}/", f"{DEV},{APP}"]) == (APP, DEV)
    assert cors_origins("") == ()
    env = {"LEARNLOOP_CORS_ORIGINS": f"{APP}, {DEV}", "LEARNLOOP_AUTH_BURST_THRESHOLD": "7"}
    access = Settings.from_env(env).access
    assert access.cors_origins == (APP, DEV) and access.burst_threshold == 7
    assert Settings.from_env({}).access.cors_origins == ()
    for bad in ("app.example.com", "https://app.example.com/path", "ftp://x"):
        with pytest.raises(ValidationError):
            cors_origins(bad)
    proc = run_cli("serve", "--home", tmp_path / "never", "--cors-origin", "app.example.com", check=False, timeout=60)
    assert proc.returncode != 0 and "CORS origin" in proc.stderr and not (tmp_path / "never").exists()
