"""Bearer JWTs over HTTP through the app: scopes (and models) from the configured claims, and
each way a token is refused (401, problem+json, its own code): expired, not yet valid, another
audience, another issuer, ``alg: none``, tampered, signed with another key, the algorithm
confusion of an HS256 token signed with the RS256 public key, a JWKS key it does not name."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI

from conftest import make_settings
from learnloop.app import create_app
from learnloop.config import AccessSettings, JwtSettings, jwt_from_env
from learnloop.errors import ValidationError
from learnloop.services import Services, build_services

SECRET = "an-hs256-secret-of-at-least-32-characters-long"
ISSUER = "https://id.example.test/"
AUDIENCE = "learnloop-api"
BASE = "http://127.0.0.1"
KEY = "an-admin-key-of-at-least-24-characters"


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 300}
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def hs256(**changes: Any) -> str:
    return jwt.encode(claims(**changes), SECRET, algorithm="HS256")


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def call(app: FastAPI, path: str, token: str | None, *, method: str = "GET", **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
            return await http.request(method, path, headers=headers, **kw)

    return asyncio.run(go())


def served(home: Path, jwt_settings: JwtSettings, **settings: Any) -> tuple[Services, FastAPI]:
    settings.setdefault("access", AccessSettings(jwt=jwt_settings))
    services = build_services(make_settings(home, f"sqlite:///{home}/ll.db", **settings))
    return services, create_app(services=services)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    settings = JwtSettings(ISSUER, AUDIENCE, secret=SECRET, models_claim="models")
    services, app = served(tmp_path_factory.mktemp("jwt"), settings, api_key=KEY)
    try:
        yield app
    finally:
        services.close()


def refused(answer: httpx.Response, code: str) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["code"] == code


def test_a_token_carries_the_scopes_of_its_claim(app: FastAPI) -> None:
    assert call(app, "/v1/models", hs256(scope="openid read")).status_code == 200
    assert call(app, "/v1/models", hs256(scope=["read"])).status_code == 200
    denied = call(app, "/v1/models", hs256(scope="predict feedback"))
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
    assert "jwt:alice" in denied.json()["detail"]
    assert call(app, "/v1/models/ghost/events", hs256(scope="admin")).status_code == 404  # got through


def test_the_models_claim_limits_a_token_to_its_models(app: FastAPI) -> None:
    limited = hs256(scope="read", models=["other"])
    assert call(app, "/v1/models/ghost/events", limited).status_code == 403
    assert call(app, "/v1/models/ghost/events", hs256(scope="read", models="ghost other")).status_code == 404


def test_keys_still_work_beside_tokens(app: FastAPI) -> None:
    assert call(app, "/v1/models", KEY).status_code == 200
    assert call(app, "/v1/models", None).status_code == 401


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (lambda: hs256(scope="read", exp=int(time.time()) - 120), "token_expired"),
        (lambda: hs256(scope="read", nbf=int(time.time()) + 600), "token_not_yet_valid"),
        (lambda: hs256(scope="read", aud="another-api"), "token_wrong_audience"),
        (lambda: hs256(scope="read", iss="https://evil.example.test/"), "token_wrong_issuer"),
        (lambda: hs256(scope="read", exp=None), "token_missing_claim"),
        (lambda: hs256(scope="openid profile"), "token_no_scope"),
        (lambda: jwt.encode(claims(scope="read"), "x" * 40 + "another", algorithm="HS256"), "token_bad_signature"),
        (lambda: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims(scope='admin'))}.", "token_algorithm_refused"),
        (
            lambda: f"{_b64({'alg': 'HS512', 'typ': 'JWT'})}.{_b64(claims(scope='admin'))}.c2ln",
            "token_algorithm_refused",
        ),
        (lambda: "not.a.jwt", "token_malformed"),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "audience",
        "issuer",
        "no-exp",
        "no-scope",
        "other-key",
        "alg-none",
        "hs512",
        "garbage",
    ],
)
def test_a_bad_token_is_refused_with_its_code(app: FastAPI, token: Any, code: str) -> None:
    refused(call(app, "/v1/models", token()), code)


def test_a_tampered_token_is_refused(app: FastAPI) -> None:
    header, _, signature = hs256(scope="read").split(".")
    refused(call(app, "/v1/models", f"{header}.{_b64(claims(scope='admin'))}.{signature}"), "token_bad_signature")


def test_bad_tokens_count_as_failed_authentications(tmp_path: Path) -> None:
    settings = JwtSettings(ISSUER, AUDIENCE, secret=SECRET)
    services, app = served(tmp_path, settings, access=AccessSettings(jwt=settings, failure_limit=3))
    try:
        for _ in range(3):
            refused(call(app, "/v1/models", hs256(scope="read", aud="x")), "token_wrong_audience")
        answer = call(app, "/v1/models", hs256(scope="read"))
        assert answer.status_code == 429 and answer.json()["code"] == "too_many_failures"
    finally:
        services.close()


def test_rs256_public_key_and_no_algorithm_confusion(tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    services, app = served(tmp_path, JwtSettings(ISSUER, AUDIENCE, public_key=pem.decode()))
    try:
        assert call(app, "/v1/models", jwt.encode(claims(scope="read"), private, algorithm="RS256")).status_code == 200
        # An HS256 token whose "secret" is the public key (which anyone may have) is refused.
        forged = ".".join([_b64({"alg": "HS256", "typ": "JWT"}), _b64(claims(scope="admin")), "c2ln"])
        refused(call(app, "/v1/models", forged), "token_algorithm_refused")
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        refused(call(app, "/v1/models", jwt.encode(claims(scope="read"), other, algorithm="RS256")),
                "token_bad_signature")  # fmt: skip
    finally:
        services.close()


def test_es256_keys_from_a_jwks_file_by_kid(tmp_path: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**public, "kid": "k1", "alg": "ES256", "use": "sig"}]}))
    env = {"LEARNLOOP_JWT_ISSUER": ISSUER, "LEARNLOOP_JWT_AUDIENCE": AUDIENCE, "LEARNLOOP_JWT_JWKS_FILE": str(jwks)}
    settings = jwt_from_env(env)
    assert settings is not None
    services, app = served(tmp_path / "home", settings)
    try:
        good = jwt.encode(claims(scope="read"), private, algorithm="ES256", headers={"kid": "k1"})
        assert call(app, "/v1/models", good).status_code == 200
        unknown = jwt.encode(claims(scope="read"), private, algorithm="ES256", headers={"kid": "k2"})
        refused(call(app, "/v1/models", unknown), "token_unknown_key")
    finally:
        services.close()


def test_jwt_settings_refuse_a_short_secret_and_hide_the_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        JwtSettings(ISSUER, AUDIENCE, secret="short")
    with pytest.raises(ValidationError, match="exactly one"):
        JwtSettings(ISSUER, AUDIENCE)
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    env = {"LEARNLOOP_JWT_ISSUER": ISSUER, "LEARNLOOP_JWT_AUDIENCE": AUDIENCE,
           "LEARNLOOP_JWT_SECRET_FILE": str(secret_file)}  # fmt: skip
    settings = jwt_from_env(env)
    assert settings is not None and settings.secret == SECRET
    assert SECRET not in repr(settings) and SECRET not in repr(AccessSettings(jwt=settings))


def test_a_remembered_token_still_expires() -> None:
    from learnloop.access.tokens import InvalidTokenError, TokenVerifier

    verifier = TokenVerifier(JwtSettings(ISSUER, AUDIENCE, secret=SECRET, leeway_seconds=0))
    token = hs256(scope="read", exp=int(time.time()) + 1)
    first, again = asyncio.run(verifier.principal(token)), asyncio.run(verifier.principal(token))
    assert first is again  # verified once, then remembered
    time.sleep(max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()) + 0.05)
    with pytest.raises(InvalidTokenError) as refused:
        asyncio.run(verifier.principal(token))
    assert refused.value.code == "token_expired"
