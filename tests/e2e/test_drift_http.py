"""Drift through a real server and the real CLI, on SQLite and PostgreSQL: a model learns the
shipped Yelp sentences, the server answers 300 IMDB movie sentences, and both the HTTP routes and
``learnloop drift --now --plot`` see the domain shift (stored, exported, alarmed once)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LiveServer, ServerLauncher, on_sqlite, run_cli, uci_rows, wait_for
from learnloop.datasets.shipped import uci_sentiment_path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

M = "/v1/models/m"
API_KEY = "drift-admin-key"
KEY = {"X-API-Key": API_KEY}
WINDOW = 300


def start(live_server: ServerLauncher, tmp_path: Path, database_url: str) -> LiveServer:
    home = tmp_path / "home"
    shutil.copy(uci_sentiment_path("yelp"), tmp_path / "yelp.txt")
    run_cli(
        "init", "--home", home, "--database-url", database_url, "--model", "m", "--data", "yelp.txt",
        "--text-column", "0", "--label-column", "1", "--no-header",
        cwd=tmp_path,
    )  # fmt: skip
    return live_server.start(home, database_url, "--api-key", API_KEY)


def check_when_logged(http: httpx.Client) -> dict[str, Any]:
    """Check now, once the server's prediction log holds the whole window."""

    def logged() -> dict[str, Any] | None:
        response = http.post(f"{M}/drift/check", headers=KEY)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["n"] == WINDOW else None

    found: dict[str, Any] = wait_for(logged, timeout=30, interval=0.2, what="the predictions to be logged")
    return found


@on_sqlite
def test_drift_through_http_and_the_cli(live_server: ServerLauncher, tmp_path: Path, database_url: str) -> None:
    server = start(live_server, tmp_path, database_url)
    imdb = uci_rows("imdb")
    random.Random(0).shuffle(imdb)
    with server.client(headers=KEY) as http:
        response = http.post(f"{M}/predict/batch", json={"items": [{"text": t} for t, _ in imdb[:WINDOW]]})
        assert response.status_code == 200, response.text

        assert http.post(f"{M}/drift/check", headers={"X-API-Key": "not-the-key"}).status_code == 401
        check = check_when_logged(http)
        assert (check["status"], check["version"], check["drifted"]) == ("drift", 1, True)
        assert {"oov", "multivariate"} <= set(check["alarms"]), check["message"]
        results = {r["detector"]: r for r in check["results"]}
        assert set(results) == {"prediction", "confidence", "text_length", "oov", "multivariate"}
        assert results["oov"]["effect_size"] >= results["oov"]["effect_threshold"]

        listed = http.get(f"{M}/drift", params={"limit": 3})
        assert listed.status_code == 200, listed.text
        assert listed.json()[0] == check  # newest first, stored as answered
        assert len(listed.json()) <= 3
        assert http.get(f"{M}/drift", params={"limit": 0}).status_code == 422
        assert http.get("/v1/models/nope/drift").status_code == 404

        events = http.get(f"{M}/events").json()
        assert [e["kind"] for e in events].count("drift_detected") == 1  # however often it was checked
        assert 'learnloop_drift_alarm{detector="oov",model="m"} 1.0' in http.get("/metrics").text

    plot = tmp_path / "out" / "drift.png"
    out = run_cli(
        "drift", "--home", server.home, "--database-url", server.database_url, "--model", "m", "--now",
        "--limit", "10", "--plot", plot,
    )  # fmt: skip
    assert "drift" in out.stdout and "multivariate" in out.stdout and "recent checks" in out.stdout, out.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    status = run_cli("status", "--home", server.home, "--database-url", server.database_url, "--model", "m").stdout
    assert "drift in" in status and "oov" in status, status
