"""Starting a server or a demo where one already runs never touches the running one (issue 14 §1).

The tests that need a server already running share one (started once for the module, as a demo
starts it: its home is ``home/`` in the demo's folder); none of them changes what it serves."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer, ServerLauncher, init_home, run_cli
from learnloop.errors import LearnloopError
from learnloop.replay.server import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def first(module_server_launcher: ServerLauncher, tmp_path_factory: pytest.TempPathFactory) -> LiveServer:
    """The server that already runs: model "m" at version 1, from the demo folder ``first.home.parent``."""
    home = tmp_path_factory.mktemp("first-demo") / "home"
    database_url = f"sqlite:///{home / 'learnloop.db'}"
    init_home(home, database_url)
    return module_server_launcher.start(home, database_url)


def _served_predictions(url: str) -> int:
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in metrics.splitlines()
        if line.startswith("learnloop_predictions_total{")
    )


def test_serve_on_a_busy_port_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        home = tmp_path / "never-made"
        proc = run_cli("serve", "--home", home, "--port", port, check=False, timeout=60)

    assert proc.returncode != 0
    assert "serving on" not in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0] and "in use" in lines[0]
    assert not home.exists()


def test_a_second_demo_on_a_busy_port_stops_before_writing_and_the_first_keeps_its_data(
    tmp_path: Path, first: LiveServer
) -> None:
    httpx.post(f"{first.url}/v1/models/m/predict", json={"text": "great food"}, timeout=10).raise_for_status()
    before = _served_predictions(first.url)
    port = int(first.url.rsplit(":", 1)[1])

    out = tmp_path / "second-demo"
    proc = run_cli("demo", "--out", out, "--port", port, "--no-serve", "--rate", "0", check=False, timeout=120)

    assert proc.returncode != 0
    assert f"port {port} is in use" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (out / "home").exists()
    assert _served_predictions(first.url) == before  # nothing was sent to the first server


def test_a_second_demo_in_the_folder_of_a_running_one_is_refused_and_its_home_kept(first: LiveServer) -> None:
    out = first.home.parent
    home = first.home
    (out / "server.pid").write_text(f"{first.process.pid}\n")

    proc = run_cli("demo", "--out", out, "--no-serve", "--rate", "0", check=False, timeout=120)

    assert proc.returncode != 0
    assert f"a server (pid {first.process.pid}) still runs from {out}" in proc.stdout + proc.stderr
    assert (home / "learnloop.db").exists()
    assert httpx.get(f"{first.url}/health", timeout=10).json()["models"] == {"m": 1}


def test_readiness_is_proven_by_the_started_process_not_any_server_on_the_port(
    tmp_path: Path, first: LiveServer
) -> None:
    port = int(first.url.rsplit(":", 1)[1])
    assert httpx.get(f"{first.url}/health", timeout=10).json()["pid"] == first.process.pid

    intruder = ServerProcess(tmp_path / "other", database_url=None, port=port, log_path=tmp_path / "other.log")
    with pytest.raises(LearnloopError):
        intruder.start(timeout=60)
    assert httpx.get(f"{first.url}/health", timeout=10).json()["pid"] == first.process.pid
