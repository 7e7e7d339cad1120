"""Asking for feedback where it helps, through a real server and the real CLI: the route lists
the most uncertain unlabelled answers, a client labels one by its prediction id, and the next
ask (route or ``learnloop ask``) no longer lists it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import ServerLauncher, run_cli, uci_rows
from learnloop.datasets.shipped import uci_sentiment_path

pytestmark = [pytest.mark.timeout(120)]

M = "/v1/models/m"


def test_a_client_asks_labels_and_is_not_asked_again(live_server: ServerLauncher, tmp_path: Path) -> None:
    # SQLite only: the route and the query run on PostgreSQL too in the integration tests.
    database_url = f"sqlite:///{tmp_path}/ll.db"
    home = tmp_path / "home"
    shutil.copy(uci_sentiment_path("yelp"), tmp_path / "yelp.txt")
    db = ["--home", str(home), "--database-url", database_url]
    run_cli("init", *db, "--model", "m", "--data", "yelp.txt", "--text-column", "0", "--label-column", "1",
            "--no-header", cwd=tmp_path)  # fmt: skip
    server = live_server.start(home, database_url)
    with server.client() as http:
        texts = [t for t, _ in uci_rows("amazon_cells")[:60]]
        served = http.post(f"{M}/predict/batch", json={"items": [{"text": t} for t in texts]})
        assert served.status_code == 200, served.text
        margins = {}
        for item in served.json()["items"]:
            top = sorted(item["probabilities"].values(), reverse=True)
            margins[item["prediction_id"]] = top[0] - top[1]

        def ask(**params: object) -> dict[str, object]:
            response = http.get(f"{M}/ask", params=params)
            assert response.status_code == 200, response.text
            body: dict[str, object] = response.json()
            return body

        # The prediction log is written in batches: wait until every answer is logged.
        for _ in range(100):
            body = ask(limit=5)
            if body["considered"] == 60:
                break
        assert body["considered"] == 60 and body["version"] == 1
        items = body["items"]
        assert isinstance(items, list) and len(items) == 5
        assert items[0]["score"] == pytest.approx(min(margins.values()), abs=1e-6)
        assert [i["score"] for i in items] == sorted(i["score"] for i in items)
        first = items[0]["prediction_id"]

        sent = http.post(f"{M}/feedback", json={"prediction_id": first, "label": "1"})
        assert sent.status_code == 201, sent.text
        again = ask(limit=5)
        assert again["considered"] == 59
        assert first not in [i["prediction_id"] for i in again["items"]]  # type: ignore[attr-defined]

        bad = http.get(f"{M}/ask", params={"strategy": "loudest"})
        assert bad.status_code == 422 and bad.json()["field"] == "strategy", bad.text
        assert http.get("/v1/models/nope/ask").status_code == 404

    out = run_cli("ask", *db, "--model", "m", "--limit", "3", "--strategy", "margin")
    assert "version 1: 3 of 59 unlabelled answers" in out.stdout, out.stdout
    assert again["items"][0]["prediction_id"] in out.stdout  # type: ignore[index]
    refused = run_cli("ask", *db, "--model", "m", "--strategy", "loudest", check=False)
    assert refused.returncode == 1 and "strategy must be one of margin, entropy" in refused.stderr
