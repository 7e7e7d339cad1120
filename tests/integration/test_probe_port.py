"""The probe port (``api/probes.py``): /health and /ready answered by a thread of their own, and
a wedged event loop reported as not alive, however fast the answer."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from learnloop.api.admission import LoopLag
from learnloop.api.probes import ProbeServer
from learnloop.services import Services

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running on a thread of its own, as uvicorn's runs beside the probe thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def probes(services: Services, loop_thread: asyncio.AbstractEventLoop) -> Iterator[tuple[ProbeServer, str]]:
    services.start(worker=False)  # the database watch and the ingest writers, as a server's lifespan
    lag = LoopLag()
    loop_thread.call_soon_threadsafe(lag.start, loop_thread)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = ProbeServer(sock, services, lag, live_stall_seconds=2.0, ready_stall_seconds=1.0)
    server.start()
    host, port = server.address
    try:
        yield server, f"http://{host}:{port}"
    finally:
        loop_thread.call_soon_threadsafe(lag.stop)
        server.stop()


def _until(probe: Callable[[], httpx.Response], status: int, within: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        answer = probe()
        if answer.status_code == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_a_blocked_event_loop_is_reported_stalled_and_the_probe_still_answers(
    probes: tuple[ProbeServer, str], loop_thread: asyncio.AbstractEventLoop, services: Services
) -> None:
    _, url = probes
    with httpx.Client(base_url=url, timeout=10.0) as http:
        alive = _until(lambda: http.get("/health"), 200)
        assert alive.status_code == 200, alive.text
        body = alive.json()
        assert body["status"] in {"ok", "degraded"} and body["pid"] == services.health()["pid"]
        assert body["event_loop_late_seconds"] < 2.0
        ready = _until(lambda: http.get("/ready"), 200)
        assert ready.status_code == 200 and ready.json()["checks"]["event_loop"] == "ok", ready.text

        release = threading.Event()
        loop_thread.call_soon_threadsafe(release.wait)  # the loop runs nothing else until set
        try:
            stalled = _until(lambda: http.get("/health"), 503)
            assert stalled.status_code == 503, stalled.text
            assert stalled.json()["status"] == "stalled" and stalled.json()["event_loop_late_seconds"] >= 2.0
            not_ready = http.get("/ready")
            assert not_ready.status_code == 503
            assert not_ready.json()["status"] == "not_ready"
            assert not_ready.json()["checks"]["event_loop"].startswith("stalled for ")
        finally:
            release.set()
        back = _until(lambda: http.get("/health"), 200)
        assert back.status_code == 200, back.text


def test_the_probe_port_serves_nothing_else(probes: tuple[ProbeServer, str]) -> None:
    _, url = probes
    with httpx.Client(base_url=url, timeout=10.0) as http:
        answer = http.get("/v1/models")
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "not_found" and "/health" in answer.json()["detail"]
        assert http.post("/health").status_code == 501  # GET only
