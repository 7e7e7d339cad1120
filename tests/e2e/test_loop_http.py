"""The whole loop through a real server and the real CLI, on SQLite and PostgreSQL:

init -> serve -> predict -> feedback -> automatic retrain -> gate -> promote -> served by the new
version -> rollback.

The scenario: version 1 learns restaurant reviews (yelp); users then send predictions on phone
(amazon_cells) and film (imdb) sentences with the true labels as corrections. The gate judges
the retrained version by forward chaining over the newest of those corrections (~750 of them in
three time blocks), where it is clearly better, while staying non-inferior on the yelp golden set.
"""

from __future__ import annotations

import json
import random
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LiveServer, ServerLauncher, run_cli, uci_rows, wait_for
from learnloop.datasets.shipped import uci_sentiment_path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

M = "/v1/models/m"
FEEDBACK_EVENTS = 1000
SINGLE_EVENTS = 100  # below retrain_every: the batch that follows sets the trigger off
SEED = 0


def db_args(server: LiveServer) -> list[str]:
    return ["--home", str(server.home), "--database-url", server.database_url]


def init_and_serve(live_server: ServerLauncher, tmp_path: Path, database_url: str) -> LiveServer:
    home = tmp_path / "home"
    # A relative --data path: an absolute one over 64 characters trips a known src bug on
    # PostgreSQL (test_model_from_a_data_file_with_a_long_path).
    shutil.copy(uci_sentiment_path("yelp"), tmp_path / "yelp.txt")
    out = run_cli(
        "init", "--home", home, "--database-url", database_url, "--model", "m", "--data", "yelp.txt",
        "--text-column", "0", "--label-column", "1", "--no-header", "--retrain-every", "150", "--cooldown", "0",
        cwd=tmp_path,
    )  # fmt: skip
    assert "version 1 is champion" in out.stdout, out.stdout
    return live_server.start(home, database_url)


def new_domain_sentences() -> list[tuple[str, str]]:
    pool = uci_rows("amazon_cells") + uci_rows("imdb")
    random.Random(SEED).shuffle(pool)
    return pool[:FEEDBACK_EVENTS]


def send_predictions_and_corrections(http: httpx.Client) -> None:
    rows = new_domain_sentences()
    prediction_ids: list[str] = []
    for text, _ in rows[:SINGLE_EVENTS]:
        response = http.post(f"{M}/predict", json={"text": text, "subject": "user-1"})
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 1
        prediction_ids.append(response.json()["prediction_id"])
    response = http.post(f"{M}/predict/batch", json={"items": [{"text": t} for t, _ in rows[SINGLE_EVENTS:]]})
    assert response.status_code == 200, response.text
    prediction_ids += [item["prediction_id"] for item in response.json()["items"]]

    for i, (pid, (_, label)) in enumerate(zip(prediction_ids[:SINGLE_EVENTS], rows, strict=False)):
        response = http.post(f"{M}/feedback", json={"prediction_id": pid, "label": label, "feedback_id": f"fb-{i}"})
        assert response.status_code == 201, response.text
    assert http.get("/v1/jobs", params={"model": "m"}).json() == []  # 100 < retrain_every
    items = [
        {"prediction_id": pid, "label": label, "feedback_id": f"fb-{i}"}
        for i, (pid, (_, label)) in enumerate(zip(prediction_ids, rows, strict=True))
        if i >= SINGLE_EVENTS
    ]
    response = http.post(f"{M}/feedback/batch", json={"items": items})
    assert response.status_code == 200, response.text
    assert (response.json()["stored"], response.json()["rejected"]) == (FEEDBACK_EVENTS - SINGLE_EVENTS, 0)


def wait_for_automatic_retrain(http: httpx.Client) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        jobs = http.get("/v1/jobs", params={"model": "m"}).json()
        done = [j for j in jobs if j["status"] in ("succeeded", "failed", "cancelled")]
        return done[0] if done else None

    job: dict[str, Any] = wait_for(finished, timeout=120, interval=0.25, what="the automatic retrain")
    assert job["requested_by"] == "trigger:feedback_volume"
    assert job["status"] == "succeeded", job
    assert job["result"]["promoted"] is True, job["result"]["verdict"]["reasons"]
    return job


def served_version(http: httpx.Client) -> int:
    response = http.post(f"{M}/predict", json={"text": "The battery lasts all day and the screen is sharp."})
    assert response.status_code == 200, response.text
    return int(response.json()["version"])


@dataclass
class PredictStream:
    """A thread that keeps predicting and records every outcome."""

    url: str
    versions: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                try:
                    response = http.post(f"{M}/predict", json={"text": "Not what I expected, it broke quickly."})
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code}: {response.text}")
                else:
                    self.versions.append(response.json()["version"])


def test_feedback_retrains_gates_promotes_and_rolls_back_over_http(
    live_server: ServerLauncher, tmp_path: Path, database_url: str
) -> None:
    server = init_and_serve(live_server, tmp_path, database_url)
    stream = PredictStream(server.url)
    thread = threading.Thread(target=stream.run, daemon=True)
    with server.client() as http:
        thread.start()
        try:
            send_predictions_and_corrections(http)
            job = wait_for_automatic_retrain(http)
            count_at_promotion = len(stream.versions)
            wait_for(lambda: len(stream.versions) > count_at_promotion + 20, timeout=30, what="predictions after it")
        finally:
            stream.stop.set()
            thread.join(30)
        # Every request during the promotion was answered, first by 1, then by 2, never back.
        assert stream.failures == []
        assert stream.versions[0] == 1 and stream.versions[-1] == 2
        assert stream.versions == sorted(stream.versions)

        assert job["result"]["version"] == 2
        model = http.get(M).json()
        assert model["champion_version"] == 2
        assert model["deployment"]["previous_version"] == 1
        assert {v["version"]: v["status"] for v in model["versions"]} == {1: "retired", 2: "champion"}
        assert model["feedback_counts"] == {"label": FEEDBACK_EVENTS}
        assert model["last_retrain"]["job_id"] == job["job_id"]

        v2 = http.get(f"{M}/versions/2").json()
        verdict = v2["verdict"]
        assert verdict["passed"] is True and verdict["decision"] == "promote"
        assert verdict["champion_version"] == 1
        assert any("McNemar" in reason for reason in verdict["reasons"]), verdict["reasons"]
        recent = next(c for c in verdict["comparisons"] if c["set_name"] == "recent")
        assert recent["n"] >= 150 and recent["p_better"] < verdict["alpha"]
        assert recent["candidate_accuracy"] > recent["champion_accuracy"]
        assert v2["lineage"]["parent_version"] == 1
        assert v2["lineage"]["snapshot_counts"]["train_feedback"] > 0
        assert v2["metrics"]["recent"]["n"] == recent["n"]
        for set_name in ("golden", "recent"):
            scores = v2["metrics"][set_name]
            assert scores["roc_auc_ci95"][0] <= scores["roc_auc"] <= scores["roc_auc_ci95"][1], scores
            assert scores["ece"] >= 0 and scores["log_loss_ci95"] is not None
        assert v2["metrics"]["latency"]["n"] > 0
        # The other metrics' paired differences with the champion, each with its interval.
        auc = verdict["secondary"]["recent"]["roc_auc"]
        assert auc["ci"][0] <= auc["difference"] <= auc["ci"][1] and auc["difference"] > 0, auc
        assert set(verdict["secondary"]["golden"]) == {"macro_f1", "roc_auc", "log_loss", "ece", "brier"}
        assert served_version(http) == 2

        rolled = http.post(f"{M}/rollback", json={"reason": "e2e test"})
        assert rolled.status_code == 200, rolled.text
        assert (rolled.json()["champion_version"], rolled.json()["previous_version"]) == (1, None)
        assert served_version(http) == 1
        assert http.get(f"{M}/versions/2").json()["status"] == "retired"
        assert http.post(f"{M}/rollback").status_code == 409  # nothing further back

    versions = run_cli("versions", "-m", "m", *db_args(server)).stdout
    cells = (line.replace("│", " ").split() for line in versions.splitlines())
    lines = {row[0]: " ".join(row) for row in cells if row and row[0].isdigit()}
    assert "champion" in lines["1"] and "retired" in lines["2"], versions
    detail = run_cli("versions", "-m", "m", "--version", "2", *db_args(server)).stdout
    assert "ROC AUC" in detail and "ECE" in detail and "predict_one latency" in detail, detail
    assert "against version 1 (paired bootstrap)" in detail, detail
    status = run_cli("status", "-m", "m", *db_args(server)).stdout
    assert "version 1, golden accuracy" in status and "2 (1 champion, 1 retired)" in status, status
    assert "rolled_back" in status and "promoted" in status


def test_cli_rollback_and_promote_reach_the_running_server(
    live_server: ServerLauncher, tmp_path: Path, database_url: str
) -> None:
    server = init_and_serve(live_server, tmp_path, database_url)
    with server.client() as http:
        send_predictions_and_corrections(http)
        wait_for_automatic_retrain(http)
        assert served_version(http) == 2

        out = run_cli("rollback", "-m", "m", *db_args(server), "--reason", "cli says no").stdout
        assert "rolled back: version 1" in out, out
        # The server learns of a change made by another process through the routing poll.
        wait_for(lambda: served_version(http) == 1, timeout=15, interval=0.2, what="the server to serve version 1")
        assert http.get(M).json()["champion_version"] == 1

        out = run_cli("promote", "2", "-m", "m", *db_args(server)).stdout
        assert "version 2 of 'm' is champion" in out, out
        wait_for(lambda: served_version(http) == 2, timeout=15, interval=0.2, what="the server to serve version 2")

    events = run_cli("events", "-m", "m", *db_args(server), "--kind", "rolled_back").stdout
    assert "rolled_back" in events and "cli says no" in events and "promoted" not in events, events
    with server.client() as http:
        trail = http.get(f"{M}/events", params={"limit": 500}).json()
        after = http.get(f"{M}/events", params={"after_id": trail[-1]["id"]}).json()
        perf = http.get(f"{M}/performance").json()
    assert [e["id"] for e in after] == sorted(e["id"] for e in trail[:-1])
    assert {"model_created", "promoted", "rolled_back", "retrain_queued"} <= {e["kind"] for e in trail}
    # Every correction judged an answer of version 1; version 2 (champion) has none judged yet.
    assert {s["version"] for s in perf["series"]} == {1} and sum(s["n"] for s in perf["series"]) == FEEDBACK_EVENTS
    assert perf["version"] == 2 and perf["online"]["n"] == 0 and perf["expected_n"] > 0
    status = run_cli("status", "-m", "m", *db_args(server)).stdout
    assert "version 2, golden accuracy" in status and "cli says no" in status, status
    assert "online accuracy" in status and "judged answers" in status, status
    exported = server.home.parent / "v2.jsonl"
    assert (
        "training examples"
        in run_cli("export", "-m", "m", *db_args(server), "--version", "2", "--out", exported).stdout
    )
    sources = {json.loads(line)["source"] for line in exported.read_text().split("\n") if line}
    assert sources == {"bootstrap", "feedback:label"}, sources
    refused = run_cli("subject", "erase", "user-1", *db_args(server), check=False)
    assert refused.returncode == 1 and "--yes" in refused.stderr, refused.stderr
    erased = run_cli("subject", "erase", "user-1", *db_args(server), "--yes").stdout
    assert "erased subject" in erased and f"{SINGLE_EVENTS} predictions" in erased, erased
    config = run_cli("config", "-m", "m", *db_args(server), "--set", "retrain_every=500").stdout
    assert "retrain_every" in config and "500" in config
    assert "150" not in config.split("retrain_every", 1)[1].splitlines()[0]
