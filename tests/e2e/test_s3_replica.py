"""A ``learnloop serve`` process on a host of its own (its own home, no disk shared with the
training side) loads its champion from S3-compatible storage (a moto server process on
127.0.0.1) and picks up a version trained and promoted elsewhere within seconds."""

from __future__ import annotations

from pathlib import Path

from conftest import ServerLauncher, create_model, make_settings, wait_for
from learnloop.feedback.intake import FeedbackInput
from learnloop.policy import Policy
from learnloop.services import build_services
from s3_server import s3_client


def test_a_replica_serves_from_s3_what_a_worker_trained_and_promoted(
    tmp_path: Path, s3_url: str, s3_endpoint: str, live_server: ServerLauncher
) -> None:
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    worker_home, replica_home = tmp_path / "worker-host", tmp_path / "replica-host"
    worker = build_services(make_settings(worker_home, database, artifact_url=s3_url, isolate_training=True))
    try:
        create_model(worker, "m", policy=Policy.of(min_recent_examples=1))
        replica = live_server.start(replica_home, database, "--artifacts", s3_url)
        with replica.client() as http:
            assert http.post("/v1/models/m/predict", json={"text": "Great food."}).json()["version"] == 1

            worker.feedback.record_sync("m", [FeedbackInput(text="Cold soup, rude waiter.", label="0")])
            outcome = worker.training.retrain("m", actor="test")  # fitted and saved by a child process
            if not outcome.promoted:
                worker.registry.promote("m", outcome.version, actor="test", force=True)

            def served_version() -> bool:
                answer = http.post("/v1/models/m/predict", json={"text": "Great food."})
                return bool(answer.status_code == 200 and answer.json()["version"] == outcome.version)

            wait_for(served_version, timeout=20, what=f"the replica serving version {outcome.version}")
        v2 = worker.registry.version("m", outcome.version)
    finally:
        worker.close()
    bucket = s3_url.removeprefix("s3://").split("/")[0]
    listed = s3_client(s3_endpoint).list_objects_v2(Bucket=bucket)["Contents"]
    keys = {str(item["Key"]) for item in listed}
    assert f"learnloop/{v2.artifact_uri}/index.json" in keys
    assert f"learnloop/snapshots/m/{outcome.snapshot}.jsonl.gz" in keys
    assert not (worker_home / "artifacts").exists() and not (replica_home / "artifacts").exists()
    assert list((replica_home / "cache" / "artifacts").rglob("manifest.json"))  # both versions, downloaded
