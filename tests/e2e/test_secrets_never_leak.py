"""Secrets never leak: a whole session over HTTP through the app (keys created, used, mistyped
and revoked; a dashboard login and logout; a webhook with a Slack-style URL, registered,
tested and delivered to; predictions, feedback, an export, errors), then every log record,
event (the model's and the server's audit trail: admin actions, failed authentications and
their burst), answer, export and /metrics is searched for every secret. The one place a secret
may appear is the answer that creates it, once (a webhook's URL, a credential when it is
Slack's, included: its listing shows the scheme and host only)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import httpx
import jwt
import pytest

from conftest import create_model, make_settings
from learnloop.app import create_app
from learnloop.config import AccessSettings, JwtSettings
from learnloop.domain import SERVER_TRAIL
from learnloop.services import build_services

ADMIN_KEY = "admin-key-for-the-leak-test-0123456789"
SLACK_TOKEN = "T0LEAK/B0LEAK/xoxbSlackTokenNeverLogged"
WEBHOOK_SECRET = "webhook-signing-secret-never-shown-again"
JWT_SECRET = "jwt-hs256-secret-never-leaked-0123456789abcdef"
BASE = "http://127.0.0.1"


def _token(audience: str, scope: str = "predict read") -> str:
    now = int(time.time())
    claims = {"iss": "https://id.test/", "aud": audience, "sub": "svc", "scope": scope, "exp": now + 300}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def test_no_secret_appears_in_logs_events_answers_exports_or_metrics(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "home"
    access = AccessSettings(jwt=JwtSettings("https://id.test/", "learnloop", secret=JWT_SECRET), burst_threshold=5)
    services = build_services(make_settings(home, f"sqlite:///{home}/ll.db", api_key=ADMIN_KEY, access=access))
    seen: list[str] = []  # every answer but the creations, headers and bodies
    created: dict[str, str] = {"token": _token("learnloop"), "token for another audience": _token("other")}

    async def session() -> None:
        app = create_app(services=services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers={"Origin": BASE}) as http:

            async def call(method: str, path: str, key: str | None = ADMIN_KEY, **kw: object) -> httpx.Response:
                headers = {"X-API-Key": key} if key else {}
                answer = await http.request(method, path, headers=headers, **kw)  # type: ignore[arg-type]
                seen.append(f"{answer.status_code} {dict(answer.headers)} {answer.text}")
                return answer

            async def create(path: str, body: dict[str, object]) -> httpx.Response:
                answer = await http.post(path, json=body, headers={"X-API-Key": ADMIN_KEY})
                assert answer.status_code == 201, answer.text
                return answer

            app_key = (await create("/v1/keys", {"name": "app", "scopes": ["predict", "feedback", "read"]})).json()
            created["app key"] = app_key["key"]
            gone = (await create("/v1/keys", {"name": "gone", "scopes": ["read"]})).json()["key"]
            created["revoked key"] = gone
            hook = {"url": f"http://127.0.0.1:9/services/{SLACK_TOKEN}", "format": "slack", "kinds": ["*"]}
            await create("/v1/webhooks", {**hook, "secret": WEBHOOK_SECRET})

            key = created["app key"]
            answer = (await call("POST", "/v1/models/m/predict", key, json={"text": "Great!", "subject": "u1"})).json()
            await call(
                "POST", "/v1/models/m/feedback", key, json={"prediction_id": answer["prediction_id"], "label": "1"}
            )
            for wrong in (key[:-2] + "zz", ADMIN_KEY + "x", "not-a-key"):
                assert (await call("GET", "/v1/models", wrong)).status_code == 401
            await call("POST", "/v1/keys", key, json={"name": "x", "scopes": ["admin"]})  # 403
            bearer = {"Authorization": f"Bearer {created['token']}"}
            assert (await http.get("/v1/models", headers=bearer)).status_code == 200
            for token in (created["token for another audience"], created["token"][:-3] + "abc"):
                answer = await http.post(
                    "/v1/models/m/predict", json={"text": "x"}, headers={"Authorization": f"Bearer {token}"}
                )
                seen.append(f"{answer.status_code} {dict(answer.headers)} {answer.text}")
                assert answer.status_code == 401
            await call("DELETE", "/v1/keys/gone")
            assert (await call("GET", "/v1/models", gone)).status_code == 401
            wrong_login = await http.post("/dashboard/login", data={"key": key[:-2] + "zz", "next": "/dashboard"})
            assert wrong_login.status_code == 401
            login = await http.post("/dashboard/login", data={"key": key, "next": "/dashboard"})
            assert login.status_code == 303
            created["session"] = login.cookies["learnloop_session"]
            await call("GET", "/dashboard", None)
            await http.post("/dashboard/logout")
            for path in ("/v1/keys", "/v1/webhooks", "/v1/models/m/events", "/v1/subjects/u1/export", "/metrics"):
                await call("GET", path)
            await call("GET", "/v1/models/m/training-data", params={"format": "jsonl"})
            await call("POST", "/v1/webhooks/1/test")
            await call("POST", "/v1/models/m/rollback")  # an event for the webhook (409: nothing to roll back)

    try:
        create_model(services, "m")
        services.cache.serve()
        asyncio.run(session())
        services.ingest.flush()
        services.notify.dispatch()  # delivers (and fails) to the Slack-style URL
        events = [str(e) for e in services.registry.events("m", 500)]
        audit = services.registry.events(SERVER_TRAIL, 500)
    finally:
        services.close()
    secrets = {"admin key": ADMIN_KEY, "webhook secret": WEBHOOK_SECRET, "slack token": SLACK_TOKEN, **created}
    secrets["jwt secret"] = JWT_SECRET
    secrets["mistyped key"] = created["app key"][:-2] + "zz"
    assert {"admin_action", "key_created", "key_revoked", "auth_failure", "auth_failure_burst"} <= {
        e.kind for e in audit
    }
    assert {e.data.get("reason") for e in audit if e.kind == "auth_failure"} >= {
        "bad_key",
        "bad_token",
        "forbidden",
        "login_failed",
    }
    events += [str(e) for e in audit]
    searched = {"logs": caplog.text, "events": "\n".join(events), "answers": "\n".join(seen)}
    assert (
        "learnloop_http_requests_total" in searched["answers"] and "/v1/subjects" in caplog.text + searched["answers"]
    )
    for what, secret in secrets.items():
        for where, text in searched.items():
            assert secret not in text, f"the {what} appears in the {where}"
