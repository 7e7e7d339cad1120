"""A fleet on hosts that share no disk: two ``learnloop serve`` replicas and two ``learnloop
worker`` processes, each with a home of its own, sharing only PostgreSQL and an S3-compatible
store (a moto server process on 127.0.0.1). A retrain asked of one replica runs on a worker,
survives that worker's SIGKILL (the other takes the job once its lease expires), and is served
by both replicas; a canary splits each subject the same way on both; a promotion under load
fails no request; a replica SIGKILLed under feedback loses no acknowledged event."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import (
    LiveServer,
    LiveWorker,
    ServerLauncher,
    WorkerLauncher,
    alive,
    create_model,
    descendants,
    fresh_postgres_database,
    make_settings,
    wait_for,
)
from learnloop.policy import Policy
from learnloop.services import build_services

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]

M = "/v1/models/m"
SHORT_LEASE = {"LEARNLOOP_JOB_LEASE_SECONDS": "3", "LEARNLOOP_JOB_HEARTBEAT_SECONDS": "0.5"}
REVIEWS = [("The food was wonderful and the staff kind.", "1"), ("Cold soup, rude waiter, never again.", "0")]


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


def host_env(home: Path, s3_url: str) -> dict[str, str]:
    """A host's own artifact cache (no disk shared), the shared store, short job leases."""
    return {**SHORT_LEASE, "LEARNLOOP_ARTIFACT_URL": s3_url, "LEARNLOOP_ARTIFACT_CACHE": str(home / "cache")}


def served_versions(replica: LiveServer, subjects: list[str]) -> dict[str, int]:
    with replica.client() as http:
        answers = {s: http.post(f"{M}/predict", json={"text": "Great food.", "subject": s}) for s in subjects}
    assert all(a.status_code == 200 for a in answers.values()), [a.text for a in answers.values()]
    return {s: int(a.json()["version"]) for s, a in answers.items()}


def job(replica: LiveServer, job_id: str) -> dict[str, Any]:
    with replica.client() as http:
        answer: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
        return answer


def test_two_replicas_and_two_workers_sharing_only_postgresql_and_s3(
    tmp_path: Path, database: str, s3_url: str, live_server: ServerLauncher, live_worker: WorkerLauncher
) -> None:
    hosts = {name: tmp_path / name for name in ("seed", "replica-a", "replica-b", "worker-1", "worker-2")}
    with closing(build_services(make_settings(hosts["seed"], database, artifact_url=s3_url))) as seed:
        create_model(seed, "m", policy=Policy.of(min_recent_examples=1, auto_promote=False))
    replicas = [
        live_server.start(hosts[h], database, "--no-worker", env=host_env(hosts[h], s3_url))
        for h in ("replica-a", "replica-b")
    ]
    workers = [live_worker.start(hosts[h], database, env=host_env(hosts[h], s3_url)) for h in ("worker-1", "worker-2")]
    a, b = replicas
    subjects = [f"player-{i}" for i in range(40)]
    assert set(served_versions(a, subjects).values()) == set(served_versions(b, subjects).values()) == {1}

    # Feedback through both replicas, a retrain asked of one; its worker dies mid-fit.
    for replica in replicas:
        with replica.client() as http:
            for text, label in REVIEWS:
                assert http.post(f"{M}/feedback", json={"text": text, "label": label}).status_code in (200, 201, 202)
    with a.client() as http:
        accepted = http.post(f"{M}/retrain", json={})
    assert accepted.status_code == 202, accepted.text
    job_id = str(accepted.json()["job_id"])

    def fitting_worker() -> LiveWorker | None:
        state = job(b, job_id)
        if state["status"] not in ("queued", "running"):
            pytest.fail(f"the retrain ended before the kill: {state}")
        busy = [w for w in workers if descendants(w.process.pid)]
        return busy[0] if state["status"] == "running" and busy else None

    doomed = wait_for(fitting_worker, timeout=90, interval=0.02, what="a worker fitting the retrain")
    children = descendants(doomed.process.pid)
    doomed.kill()
    wait_for(lambda: not any(alive(pid) for pid in children), timeout=10, what="its training process to die")
    survivor = next(w for w in workers if w is not doomed)
    done = wait_for(
        lambda: (s := job(a, job_id))["status"] in ("succeeded", "failed", "cancelled") and s,
        timeout=120,
        what=f"the surviving worker to finish the retrain\n{survivor.log_tail()}",
    )
    assert done["status"] == "succeeded", f"{done}\n{survivor.log_tail()}"
    version = int(done["result"]["version"])
    assert version == 2

    # A canary of the new version: each subject gets the same version on both replicas.
    with b.client() as http:
        started = http.post(
            f"{M}/rollouts", json={"version": version, "strategy": "canary", "share": 0.5, "force": True}
        )
    assert started.status_code == 201, started.text
    rollout_id = started.json()["id"]
    wait_for(
        lambda: (
            {1, 2} <= set(served_versions(a, subjects).values())
            and {1, 2} <= set(served_versions(b, subjects).values())
        ),
        timeout=20,
        what="both replicas splitting traffic",
    )
    on_a, on_b = served_versions(a, subjects), served_versions(b, subjects)
    assert on_a == on_b
    assert 5 <= sum(v == version for v in on_a.values()) <= 35  # about half of 40 subjects

    # Promote while both replicas answer without a pause: no request fails.
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()

    def load(replica: LiveServer) -> None:
        with replica.client(timeout=10) as http:
            while not stop.is_set():
                try:
                    answer = http.post(f"{M}/predict", json={"text": "Fine.", "subject": uuid.uuid4().hex})
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code} {answer.text}")
                answered[0] += 1

    threads = [threading.Thread(target=load, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    try:
        with a.client() as http:
            assert http.post(f"{M}/rollouts/{rollout_id}/promote", json={}).status_code == 200
        wait_for(
            lambda: set(served_versions(a, subjects).values()) == set(served_versions(b, subjects).values()) == {2},
            timeout=20,
            what="both replicas serving version 2 alone",
        )
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert answered[0] > 0 and failures == []

    # A replica killed under feedback: every event it acknowledged is stored.
    acknowledged: list[str] = []

    def feedback_until_refused() -> None:
        with b.client(timeout=5) as http:
            for i in range(100_000):
                key = f"fleet-{i}"
                try:
                    answer = http.post(f"{M}/feedback", json={"text": f"review {i}", "label": "1", "feedback_id": key})
                except httpx.HTTPError:
                    return
                if answer.status_code < 300:
                    acknowledged.append(key)

    sender = threading.Thread(target=feedback_until_refused)
    sender.start()
    wait_for(lambda: len(acknowledged) >= 50, timeout=60, what="50 feedback events acknowledged by replica B")
    b.kill()
    sender.join(30)
    with closing(build_services(make_settings(hosts["seed"], database, artifact_url=s3_url))) as reader:
        stored = {f.feedback.client_id for f in reader.feedback.recent("m", len(acknowledged) + 100)}
    assert set(acknowledged) <= stored, f"{len(set(acknowledged) - stored)} acknowledged events lost"
    assert not any((home / "artifacts").exists() for home in hosts.values())
