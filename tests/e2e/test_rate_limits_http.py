"""Rate limits over HTTP through the app: a key's own rate and the server's default, the
``RateLimit-*`` headers on every answer and 429 ``rate_limited`` with ``Retry-After`` past the
limit; feedback per subject; and two app instances sharing one Redis drawing on one budget
(a real Redis: skipped only where none runs and CI is not set)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from conftest import create_model, make_settings, unavailable
from learnloop.access.limits import LocalBuckets, RedisBuckets, reserve_size
from learnloop.app import create_app
from learnloop.config import AccessSettings
from learnloop.domain import Rate, Scope, parse_rate
from learnloop.errors import ValidationError
from learnloop.services import Services, build_services

ADMIN_KEY = "an-admin-key-of-at-least-24-characters"
BASE = "http://127.0.0.1"
Call = Callable[..., Awaitable[httpx.Response]]


def served(home: Path, **access: Any) -> Services:
    return build_services(
        make_settings(home, f"sqlite:///{home}/ll.db", api_key=ADMIN_KEY, access=AccessSettings(**access))
    )


def with_clients(apps: list[FastAPI], body: Callable[[list[Call]], Awaitable[None]]) -> None:
    """Run ``body`` with one caller per app, in one event loop (a Redis client belongs to one)."""

    async def go() -> None:
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url=BASE) for a in apps]

        def caller(http: httpx.AsyncClient) -> Call:
            async def call(method: str, path: str, key: str = ADMIN_KEY, **kw: Any) -> httpx.Response:
                return await http.request(method, path, headers={"X-API-Key": key}, **kw)

            return call

        try:
            await body([caller(c) for c in clients])
        finally:
            for c in clients:
                await c.aclose()
            for a in apps:
                await a.state.services.access.buckets.aclose()

    asyncio.run(go())


def limited(answer: httpx.Response, limit: int) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "rate_limited"
    assert int(answer.headers["retry-after"]) >= 1
    assert answer.headers["ratelimit-limit"] == str(limit) and answer.headers["ratelimit-remaining"] == "0"


def test_a_key_has_its_own_rate_and_others_the_servers_default(tmp_path: Path) -> None:
    services = served(tmp_path, rate="5/m")
    slow = services.access.create("slow", [Scope.READ], rate=parse_rate("3/m"), actor="test")[1]
    other = services.access.create("other", [Scope.READ], actor="test")[1]

    async def body(calls: list[Call]) -> None:
        call = calls[0]
        for remaining in (2, 1, 0):
            answer = await call("GET", "/v1/models", slow)
            assert answer.status_code == 200
            assert answer.headers["ratelimit-limit"] == "3"
            assert answer.headers["ratelimit-remaining"] == str(remaining)
            assert 1 <= int(answer.headers["ratelimit-reset"]) <= 60
        limited(await call("GET", "/v1/models", slow), 3)
        answer = await call("GET", "/v1/models", other)  # its own bucket, at the default rate
        assert answer.status_code == 200 and answer.headers["ratelimit-limit"] == "5"
        for _ in range(5):
            await call("GET", "/v1/models")
        limited(await call("GET", "/v1/models"), 5)  # the admin key too
        listed = (await call("GET", "/v1/keys", other)).status_code  # read key: 403, still counted
        assert listed == 403

    try:
        with_clients([create_app(services=services)], body)
        assert [k.rate for k in services.access.list_keys()] == [Rate(3, 60.0), None]
    finally:
        services.close()


def test_no_rate_no_headers_and_keys_created_over_http_carry_theirs(tmp_path: Path) -> None:
    services = served(tmp_path)

    async def body(calls: list[Call]) -> None:
        call = calls[0]
        assert "ratelimit-limit" not in (await call("GET", "/v1/models")).headers
        created = await call("POST", "/v1/keys", json={"name": "app", "scopes": ["read"], "rate": "2/10s"})
        assert created.status_code == 201 and created.json()["rate"] == "2/10s"
        bad = await call("POST", "/v1/keys", json={"name": "bad", "scopes": ["read"], "rate": "fast"})
        assert bad.status_code == 422 and bad.json()["field"] == "rate"
        key = created.json()["key"]
        assert [(await call("GET", "/v1/models", key)).status_code for _ in range(3)] == [200, 200, 429]

    try:
        with_clients([create_app(services=services)], body)
    finally:
        services.close()


def test_feedback_is_limited_per_subject(tmp_path: Path) -> None:
    services = served(tmp_path, subject_rate="2/m")
    create_model(services, "m")

    async def body(calls: list[Call]) -> None:
        call = calls[0]

        async def feedback(subject: str) -> httpx.Response:
            return await call("POST", "/v1/models/m/feedback", json={"text": "fine", "label": "1", "subject": subject})

        assert [(await feedback("u1")).status_code for _ in range(2)] == [201, 201]
        limited(await feedback("u1"), 2)
        assert (await feedback("u2")).status_code == 201
        batch = [{"text": "ok", "label": "1", "subject": s} for s in ("u3", "u3", "u2")]  # u2 has one left
        assert (await call("POST", "/v1/models/m/feedback/batch", json={"items": batch})).status_code == 200
        limited(await call("POST", "/v1/models/m/feedback/batch", json={"items": batch[:1]}), 2)

    try:
        services.cache.serve()
        with_clients([create_app(services=services)], body)
    finally:
        services.close()


def test_local_buckets_refill_at_the_rate() -> None:
    now = [100.0]
    buckets = LocalBuckets(clock=lambda: now[0])
    rate = Rate(2, 1.0)
    assert [buckets.take_now("k", rate).allowed for _ in range(3)] == [True, True, False]
    refused = buckets.take_now("k", rate)
    assert refused.retry_after == pytest.approx(0.5) and refused.remaining == 0
    now[0] += 0.5
    assert buckets.take_now("k", rate).allowed
    assert buckets.take_now("k", rate, cost=3).allowed is False  # more than the bucket holds


def test_rates_are_parsed_and_refused_when_malformed() -> None:
    assert parse_rate("200/s") == Rate(200, 1.0) and str(parse_rate("6000/m")) == "6000/m"
    assert parse_rate("50/10s") == Rate(50, 10.0) and str(parse_rate("50/10s")) == "50/10s"
    for bad in ("0/s", "10/0s", "fast", "10/y", "-1/s"):
        with pytest.raises(ValidationError):
            parse_rate(bad)


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("LEARNLOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        unavailable(f"no Redis at {url} (LEARNLOOP_TEST_REDIS_URL)")
    finally:
        client.close()
    return url


def test_two_replicas_sharing_redis_draw_on_one_budget(tmp_path: Path, redis_url: str) -> None:
    one = served(tmp_path, redis_url=redis_url)
    two = build_services(one.settings)  # another replica of the same server: same database, same Redis
    name = f"shared-{uuid.uuid4().hex[:12]}"  # its own bucket in a Redis other runs share
    key = one.access.create(name, [Scope.READ], rate=parse_rate("4/m"), actor="test")[1]

    async def body(calls: list[Call]) -> None:
        first, second = calls
        statuses = [(await (first if i % 2 else second)("GET", "/v1/models", key)).status_code for i in range(4)]
        assert statuses == [200] * 4
        limited(await first("GET", "/v1/models", key), 4)
        limited(await second("GET", "/v1/models", key), 4)

    try:
        with_clients([create_app(services=one), create_app(services=two)], body)
    finally:
        one.close()
        two.close()


def test_two_replicas_with_local_reserves_stay_within_the_bound(redis_url: str) -> None:
    """Each replica takes up to ``reserve_size`` tokens from Redis at once and spends them itself:
    a burst across two replicas is admitted within ``2 x (reserve - 1)`` of what one exact shared
    bucket admits (refill during the burst counted), with far fewer round trips than requests
    (once Redis says the bucket is empty, a replica refuses by itself until it can have refilled)."""
    rate = Rate(400, 1.0)
    size = reserve_size(rate)
    assert size == 20  # 5% of the burst (0.1 s of the rate would be 40)
    name = f"reserve-{uuid.uuid4().hex[:12]}"
    replicas = [RedisBuckets(redis_url, LocalBuckets()) for _ in range(2)]
    requests = 1500

    async def burst() -> tuple[int, float, int]:
        try:
            started = time.monotonic()
            takes = [replicas[i % 2].take(name, rate) for i in range(requests)]
            decisions = await asyncio.gather(*takes)
            elapsed = time.monotonic() - started
            held = sum(r._reserves[name].tokens for r in replicas if name in r._reserves)
            return sum(d.allowed for d in decisions), elapsed, held
        finally:
            for r in replicas:
                await r.aclose()

    admitted, elapsed, held = asyncio.run(burst())
    refilled = rate.per_second * elapsed
    slack = 2 * (size - 1)
    assert rate.limit - slack <= admitted <= rate.limit + refilled + slack, (admitted, elapsed, refilled)
    assert held <= slack  # what the replicas still hold: the under-admission, within the bound
    trips = [r.round_trips for r in replicas]
    assert min(trips) >= 1 and sum(trips) < requests / 4, trips  # refusals past the limit stay local


def test_an_unreachable_redis_falls_back_to_this_replicas_buckets(caplog: pytest.LogCaptureFixture) -> None:
    buckets = RedisBuckets("redis://127.0.0.1:9/0", LocalBuckets())

    async def takes() -> list[bool]:
        try:
            return [(await buckets.take("k", Rate(1, 60.0))).allowed for _ in range(2)]
        finally:
            await buckets.aclose()

    assert asyncio.run(takes()) == [True, False]
    assert "Redis unreachable" in caplog.text and "127.0.0.1:9" not in caplog.text


def test_keys_create_takes_a_rate_and_keys_list_shows_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from learnloop.cli.main import app

    home = str(tmp_path / "home")
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--home", home, "--name", "app", "--scope", "predict",
                                  "--rate", "200/s"], env={"COLUMNS": "200"})  # fmt: skip
    assert created.exit_code == 0 and "rate: 200/s" in created.output, created.output
    listed = runner.invoke(app, ["keys", "list", "--home", home], env={"COLUMNS": "200"})
    assert "200/s" in listed.output
    refused = runner.invoke(app, ["keys", "create", "--home", home, "--name", "b", "--scope", "read", "--rate", "x"])
    assert isinstance(refused.exception, ValidationError) and refused.exception.field == "rate"  # main() prints it
