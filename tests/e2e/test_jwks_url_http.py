"""Bearer JWTs checked with keys fetched from a JWKS URL, served by a real HTTP server on
127.0.0.1 that each test starts and stops: an RS256 token accepted; a rotated key (a new kid)
picked up by one fetch; made-up kids never fetch more than once per ``jwks_refetch_seconds``;
the provider down with keys fetched before (still accepted, stale or not); and the provider
down before any key was fetched (503 ``auth_unavailable`` with Retry-After, not 401)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from conftest import make_settings
from learnloop.app import create_app
from learnloop.config import AccessSettings, JwtSettings, jwt_from_env
from learnloop.errors import ValidationError
from learnloop.services import Services, build_services

ISSUER = "https://id.example.test/"
AUDIENCE = "learnloop-api"


class Provider:
    """A JWKS endpoint on 127.0.0.1: the keys it publishes can change, and it counts requests."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.requests = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.requests += 1
                body = json.dumps({"keys": [provider.jwk(kid) for kid in provider.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.running = True

    def jwk(self, kid: str) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
        return {**public, "kid": kid, "alg": "RS256", "use": "sig"}

    def add(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def token(self, kid: str, *, signer: str | None = None, **claims: Any) -> str:
        """A token naming ``kid``, signed with that key (or with ``signer``'s)."""
        now = int(time.time())
        values = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "scope": "read", "iat": now, "exp": now + 300}
        key = self.keys[signer or kid]
        return jwt.encode({**values, **claims}, key, algorithm="RS256", headers={"kid": kid})

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=10)


@pytest.fixture
def provider() -> Iterator[Provider]:
    started = Provider()
    try:
        yield started
    finally:
        started.stop()


def served(home: Path, url: str, failure_limit: int = 20, **jwks: Any) -> tuple[Services, FastAPI]:
    settings = JwtSettings(ISSUER, AUDIENCE, jwks_url=url, jwks_timeout_seconds=2.0, **jwks)
    access = AccessSettings(jwt=settings, failure_limit=failure_limit)
    services = build_services(make_settings(home, f"sqlite:///{home}/ll.db", access=access))
    return services, create_app(services=services)


def get(app: FastAPI, token: str) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            return await http.get("/v1/models", headers={"Authorization": f"Bearer {token}"})

    return asyncio.run(go())


def test_keys_come_from_the_url_when_needed_and_a_rotation_is_picked_up(tmp_path: Path, provider: Provider) -> None:
    provider.add("k1")
    env = {"LEARNLOOP_JWT_ISSUER": ISSUER, "LEARNLOOP_JWT_AUDIENCE": AUDIENCE, "LEARNLOOP_JWT_JWKS_FILE": provider.url}
    settings = jwt_from_env(env)
    assert settings is not None and settings.jwks_url == provider.url and settings.jwks is None
    services, app = served(tmp_path, provider.url, jwks_refetch_seconds=0.0)
    try:
        assert provider.requests == 0  # nothing fetched at start-up
        assert get(app, provider.token("k1")).status_code == 200
        assert provider.requests == 1
        assert get(app, provider.token("k1", sub="bob")).status_code == 200  # the keys are kept
        assert provider.requests == 1
        provider.add("k2")  # the provider rotates: a new key, tokens signed with it
        assert get(app, provider.token("k2")).status_code == 200
        assert provider.requests == 2
        forged = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "scope": "admin", "exp": int(time.time()) + 60},
                            rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256",
                            headers={"kid": "k2"})  # fmt: skip
        answer = get(app, forged)
        assert answer.status_code == 401 and answer.json()["code"] == "token_bad_signature"
    finally:
        services.close()


def test_unknown_kids_fetch_at_most_once_per_refetch_interval(tmp_path: Path, provider: Provider) -> None:
    provider.add("k1")
    services, app = served(tmp_path, provider.url, jwks_refetch_seconds=3600.0)
    try:
        assert get(app, provider.token("k1")).status_code == 200
        provider.add("k2")
        for kid in ("k2", "made-up-1", "made-up-2"):  # within the hour after the last fetch
            answer = get(app, provider.token(kid, signer="k2"))
            assert answer.status_code == 401 and answer.json()["code"] == "token_unknown_key"
        assert provider.requests == 1  # the endpoint is not flooded
    finally:
        services.close()


def test_keys_fetched_before_keep_working_while_the_provider_is_down(tmp_path: Path, provider: Provider) -> None:
    provider.add("k1")
    services, app = served(tmp_path, provider.url, jwks_cache_seconds=0.0, jwks_refetch_seconds=0.0)
    try:
        assert get(app, provider.token("k1")).status_code == 200
        provider.stop()
        # Stale at once (cache 0 s): each new token tries the URL, fails, and keeps the keys.
        assert get(app, provider.token("k1", sub="bob")).status_code == 200
        assert get(app, provider.token("k1", sub="carol")).status_code == 200
        answer = get(app, provider.token("k9", signer="k1"))
        assert answer.status_code == 401 and answer.json()["code"] == "token_unknown_key"
    finally:
        services.close()


def test_a_provider_down_before_any_key_answers_503(tmp_path: Path, provider: Provider) -> None:
    provider.add("k1")
    token = provider.token("k1")
    provider.stop()
    services, app = served(tmp_path, provider.url, failure_limit=2, jwks_refetch_seconds=30.0)
    try:
        for _ in range(3):  # the first tries the URL; the others wait for the refetch interval
            answer = get(app, token)
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] == "auth_unavailable"
            assert 1 <= int(answer.headers["retry-after"]) <= 30
        # Not failed authentications: past the throttle's limit of 2, still 503, never 429.
        assert services.access.throttle.retry_after("127.0.0.1") is None
    finally:
        services.close()


def test_a_jwks_url_is_https_or_loopback_http() -> None:
    assert JwtSettings(ISSUER, AUDIENCE, jwks_url="https://id.example.test/jwks").jwks_url
    with pytest.raises(ValidationError, match="https"):
        JwtSettings(ISSUER, AUDIENCE, jwks_url="http://id.example.test/jwks")
    with pytest.raises(ValidationError, match="exactly one"):
        JwtSettings(ISSUER, AUDIENCE, jwks_url="https://id.example.test/jwks", secret="x" * 40)
