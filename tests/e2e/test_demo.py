"""`learnloop demo`, the README's main job, as a user runs it (without keeping the server)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from conftest import run_cli

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
