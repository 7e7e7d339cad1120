"""`learnloop demo`, the README's main job, as a user runs it (without keeping the server)."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_demo_replays_the_shipped_stream_through_a_real_server_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = run_cli("demo", "--out", out, "--no-serve", "--rate", "0", timeout=280)

    assert "prequential accuracy" in proc.stdout
    assert "learnloop vs static after the shift" in proc.stdout
    assert "retrain queued" in proc.stdout  # events were shown as they happened
    summary = json.loads((out / "replay.json").read_text())
    assert summary["config"]["mode"] == "http"
    assert summary["items"] == 2000
    assert [s["name"] for s in summary["segments"]] == ["amazon_cells", "imdb"]
    assert summary["retrains"], "the server's worker never retrained"
    assert not summary["safety"]["rejected_versions_served"]
    assert (out / "learning_curve.png").stat().st_size > 10_000
    assert "server.log" in {p.name for p in out.iterdir()}
    # --no-serve: the server the demo started is gone.
    port = int(summary["server_url"].rsplit(":", 1)[1])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    # It ends by saying how to look at its model from another terminal, lines that run as printed:
    # the shipped labels by their names, the home and the only model found without options.
    lines = proc.stdout.split("Look at the model from another terminal:\n", 1)[1].splitlines()
    commands = [line.strip().split("   # ", 1)[0] for line in lines if line.startswith("  ")]
    assert commands[0] == f"export LEARNLOOP_HOME={(out / 'home').resolve()}"
    looked = subprocess.run(
        ["bash", "-c", "set -e\n" + "\n".join(commands)], capture_output=True, text=True, timeout=120,
        env=subprocess_env(), cwd=tmp_path,
    )  # fmt: skip
    assert looked.returncode == 0, looked.stdout + looked.stderr
    assert "sentiment (binary: negative, positive)" in looked.stdout
    assert "prediction id" in looked.stdout and "versions of sentiment" in looked.stdout
