"""`learnloop serve` runs on asyncio unless asked otherwise (uvloop starved some connections for
seconds when overloaded: README, "Overload pushes back"); the loop it runs is logged at start.
``--probe-port`` answers /health and /ready on a port of their own."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from conftest import ServerLauncher, free_port, init_home, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _loop_line(log: str) -> str:
    lines = [line for line in log.splitlines() if "event loop:" in line]
    assert len(lines) == 1, log
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [((), "asyncio.unix_events"), (("--loop", "uvloop"), "uvloop.Loop")],
    ids=["default", "uvloop"],
)
def test_the_server_runs_the_loop_asked_for(
    live_server: ServerLauncher, tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    home, database_url = tmp_path / "home", f"sqlite:///{tmp_path}/ll.db"
    init_home(home, database_url)
    server = live_server.start(home, database_url, "--log-level", "info", *args)
    with server.client() as http:
        assert http.post("/v1/models/m/predict", json={"text": "a fine day"}).status_code == 200
    assert expected in _loop_line(server.log_tail(200_000))


def test_an_unknown_loop_is_refused_before_anything_starts(tmp_path: Path) -> None:
    home = tmp_path / "never-made"
    proc = run_cli("serve", "--home", home, "--loop", "trio", check=False, timeout=60)
    assert proc.returncode == 2
    assert "'trio' is not one of 'asyncio', 'uvloop', 'auto'" in proc.stderr.replace("\n", " ").replace("│", "")
    assert not home.exists()


def test_the_probe_port_answers_for_the_server_and_only_probes(live_server: ServerLauncher, tmp_path: Path) -> None:
    home, database_url = tmp_path / "home", f"sqlite:///{tmp_path}/ll.db"
    init_home(home, database_url)
    probe_port = free_port()
    server = live_server.start(home, database_url, "--probe-port", str(probe_port))
    with httpx.Client(base_url=f"http://127.0.0.1:{probe_port}", timeout=10.0) as probe, server.client() as http:
        health = probe.get("/health")
        assert health.status_code == 200, health.text
        assert health.json()["pid"] == server.process.pid and health.json()["models"] == {"m": 1}
        assert health.json() == http.get("/health").json() | {
            "event_loop_late_seconds": health.json()["event_loop_late_seconds"]
        }
        ready = probe.get("/ready")
        assert ready.status_code == 200 and set(ready.json()["checks"]) == {
            *http.get("/ready").json()["checks"],
            "event_loop",
        }
        assert probe.get("/v1/models").status_code == 404
    assert "liveness and readiness also on" in server.log_tail()


def test_a_busy_probe_port_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        home = tmp_path / "never-made"
        proc = run_cli("serve", "--home", home, "--port", free_port(), "--probe-port", busy, check=False, timeout=60)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{busy}" in lines[0] and "--probe-port" in lines[0], lines
    assert not home.exists()
