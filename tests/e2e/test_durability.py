"""An acknowledged feedback event survives the server being SIGKILLed mid-stream."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import (
    LASTING_RETRAIN,
    QUICK_RETRAIN,
    ServerLauncher,
    alive,
    change_policy,
    descendants,
    init_home,
    kill_leftovers,
    wait_for,
    wait_until_searching,
)
from learnloop.domain import Policy
from learnloop.store.db import Database
from learnloop.store.repositories import predictions as prediction_repo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

M = "/v1/models/m"
# A lease short enough for a test to wait out (the default is 30 s).
SHORT_LEASE = {"LEARNLOOP_JOB_LEASE_SECONDS": "3", "LEARNLOOP_JOB_HEARTBEAT_SECONDS": "0.5"}
CLIENTS = 6
KILL_AFTER_ACKS = 300


@dataclass
class Client:
    number: int
    url: str
    killed: threading.Event
    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)
    in_doubt: dict[str, dict[str, Any]] = field(default_factory=dict)  # sent, no answer
    unexpected: list[str] = field(default_factory=list)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            i = 0
            while True:
                client_id = f"c{self.number}-{i}"
                body = {
                    "text": f"client {self.number} event {i}: works fine",
                    "label": str(i % 2),
                    "feedback_id": client_id,
                }
                i += 1
                try:
                    response = http.post(f"{M}/feedback", json=body)
                except httpx.HTTPError as exc:
                    self.in_doubt[client_id] = body
                    if not self.killed.is_set():
                        self.unexpected.append(f"{type(exc).__name__}: {exc}")
                    return
                if response.status_code == 201:
                    self.acknowledged[client_id] = response.json()
                elif self.killed.is_set():
                    self.in_doubt[client_id] = body
                    return
                else:
                    self.unexpected.append(f"{response.status_code}: {response.text}")
                    return


def test_sigkill_during_feedback_ingestion_loses_no_acknowledged_event(
    live_server: ServerLauncher, tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    init_home(home, database_url)
    server = live_server.start(home, database_url)

    killed = threading.Event()
    clients = [Client(n, server.url, killed) for n in range(CLIENTS)]
    threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    wait_for(
        lambda: sum(len(c.acknowledged) for c in clients) >= KILL_AFTER_ACKS or any(c.unexpected for c in clients),
        timeout=60,
        interval=0.01,
        what=f"{KILL_AFTER_ACKS} acknowledged events",
    )
    killed.set()
    server.kill()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert [c.unexpected for c in clients] == [[]] * CLIENTS
    acknowledged = {k: v for c in clients for k, v in c.acknowledged.items()}
    in_doubt = {k: v for c in clients for k, v in c.in_doubt.items()}
    assert len(acknowledged) >= KILL_AFTER_ACKS
    assert in_doubt, "the kill should have interrupted requests in flight"

    restarted = live_server.start(home, database_url)
    with restarted.client() as http:
        for client_id, stored in acknowledged.items():
            response = http.get(f"{M}/feedback/{client_id}")
            assert response.status_code == 200, f"acknowledged event {client_id} was lost"
            assert response.json() == stored
        # Clients retry what they never heard back about; the ids make the retries safe.
        for client_id, body in in_doubt.items():
            assert http.post(f"{M}/feedback", json=body).status_code == 201
            assert http.get(f"{M}/feedback/{client_id}").json()["text"] == body["text"]
        counts = http.get(M).json()["feedback_counts"]
    assert counts == {"example": len(acknowledged) + len(in_doubt)}


def test_sigkill_during_a_retrain_leaves_no_job_stuck_running(
    live_server: ServerLauncher, tmp_path: Path, database_url: str
) -> None:
    # No retries: the job the killed server left running fails once its lease expires, with
    # the reason, and frees the model's slot (tests/e2e/test_job_leases.py covers the retry).
    home = tmp_path / "home"
    init_home(home, database_url, Policy.of(retrain_retries=0))
    change_policy(home, database_url, LASTING_RETRAIN)
    server = live_server.start(home, database_url, env=SHORT_LEASE)
    orphans: list[int] = []
    try:
        with server.client() as http:
            job_id = http.post(f"{M}/retrain").json()["job_id"]
            wait_until_searching(http, job_id, server)
        orphans = descendants(server.process.pid)
        server.kill()
        change_policy(home, database_url, QUICK_RETRAIN)  # the next retrain fits at once

        restarted = live_server.start(home, database_url, env=SHORT_LEASE)
        with restarted.client() as http:
            job = wait_for(
                lambda: (j := http.get(f"/v1/jobs/{job_id}").json())["status"] != "running" and j,
                timeout=30,
                interval=0.1,
                what="the dead server's job to be reclaimed",
            )
            assert job["status"] == "failed", job
            assert "stopped renewing its lease" in job["error"]
            assert "failed after 1 attempt(s) (policy.retrain_retries is 0)" in job["error"]
            assert http.get(M).json()["champion_version"] == 1
            again = http.post(f"{M}/retrain")
            assert again.status_code == 202, again.text  # the dead job no longer holds the model's slot
            new_id = again.json()["job_id"]
            done = wait_for(
                lambda: (j := http.get(f"/v1/jobs/{new_id}").json())["status"] in ("succeeded", "failed") and j,
                timeout=60,
                interval=0.2,
                what="the second retrain",
            )
            assert done["status"] == "succeeded", done
    finally:
        kill_leftovers(orphans)


def test_a_killed_server_leaves_no_training_process_behind(live_server: ServerLauncher, tmp_path: Path) -> None:
    home, url = tmp_path / "home", f"sqlite:///{tmp_path}/ll.db"
    init_home(home, url)
    server = live_server.start(home, url)
    leftovers: list[int] = []
    try:
        with server.client() as http:
            job_id = http.post(f"{M}/retrain").json()["job_id"]
            wait_for(
                lambda: http.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded",
                timeout=60,
                interval=0.1,
                what="the retrain",
            )
        leftovers = descendants(server.process.pid)
        assert leftovers, "the server should hold a training process after a retrain"
        server.kill()
        wait_for(lambda: not any(alive(pid) for pid in leftovers), timeout=10, interval=0.2, what="children to exit")
    finally:
        kill_leftovers(leftovers)


def test_graceful_stop_flushes_every_answered_prediction_to_the_log(
    live_server: ServerLauncher, tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    init_home(home, database_url)
    server = live_server.start(home, database_url)
    answered: list[str] = []
    stopping = threading.Event()
    unexpected: list[str] = []

    def stream(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for i in range(100_000):
                try:
                    response = http.post(f"{M}/predict", json={"text": f"client {n} sentence {i}"})
                except httpx.HTTPError as exc:
                    if not stopping.is_set():
                        unexpected.append(repr(exc))
                    return
                if response.status_code != 200:
                    if not stopping.is_set():
                        unexpected.append(response.text)
                    return
                answered.append(response.json()["prediction_id"])

    threads = [threading.Thread(target=stream, args=(n,), daemon=True) for n in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(answered) >= 400 or unexpected, timeout=60, interval=0.01, what="400 predictions")
    stopping.set()
    server.stop()  # SIGTERM mid-stream; uvicorn exits -15 after its graceful shutdown
    for thread in threads:
        thread.join(30)
    assert unexpected == []
    assert server.process.returncode in (0, -signal.SIGTERM), server.log_tail()

    db = Database(database_url)
    try:
        with db.read() as conn:
            missing = [pid for pid in answered if prediction_repo.get_prediction(conn, pid) is None]
            assert missing == [], f"{len(missing)} of {len(answered)} answered predictions were never logged"
    finally:
        db.dispose()
