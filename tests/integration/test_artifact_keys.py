"""Artifacts by URL: the store is opened from ``artifact_url`` (here and in the training
process), and the database holds keys relative to it, so hosts with different disks share
one database."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import create_model, make_settings, run_cli
from learnloop.domain import ModelVersion
from learnloop.errors import ValidationError
from learnloop.feedback.intake import FeedbackInput
from learnloop.policy import Policy
from learnloop.services import Services, build_services
from learnloop.store.repositories import snapshots as snapshot_repo

CreateModel = Callable[..., ModelVersion]


def is_key(value: object) -> bool:
    return isinstance(value, str) and "://" not in value and not value.startswith("/")


def test_the_database_holds_keys_and_the_files_live_at_the_artifact_url(
    tmp_path: Path, database_url: str, make_model: CreateModel
) -> None:
    root = tmp_path / "shared artifacts"
    services = build_services(make_settings(tmp_path / "home", database_url, artifact_url=root.as_uri()))
    try:
        v1 = make_model(services, "m")
        outcome = services.training.retrain("m", actor="test")
        v2 = services.registry.version("m", outcome.version)
        snapshot = services.registry.snapshot(outcome.snapshot)
    finally:
        services.close()
    assert snapshot is not None
    for version in (v1, v2):
        assert is_key(version.artifact_uri) and version.artifact_uri.startswith("models/m/")
        assert (root / version.artifact_uri / "manifest.json").is_file()
        reference = version.metrics["drift_reference"]
        assert is_key(reference) and reference.startswith("drift/m/") and (root / reference).is_file()
    assert snapshot.uri == f"snapshots/m/{outcome.snapshot}.jsonl.gz" and (root / snapshot.uri).is_file()
    assert not (tmp_path / "home" / "artifacts").exists()


def test_two_hosts_with_different_disks_share_one_database(tmp_path: Path, database_url: str) -> None:
    """Host A creates the model; its artifact directory is copied to host B's disk and A's is
    gone; B serves, retrains in a child process that opens B's store from its URL, and A,
    given the new files, serves B's version."""
    disk_a, disk_b = tmp_path / "host-a" / "artifacts", tmp_path / "host-b" / "store"
    host_a = build_services(make_settings(tmp_path / "host-a", database_url, artifact_url=disk_a.as_uri()))
    try:
        create_model(host_a, "m", policy=Policy.of(min_recent_examples=1))
    finally:
        host_a.close()
    shutil.copytree(disk_a, disk_b)
    shutil.rmtree(disk_a)

    settings_b = make_settings(tmp_path / "host-b", database_url, artifact_url=disk_b.as_uri(), isolate_training=True)
    host_b = build_services(settings_b)
    try:
        assert host_b.predictions.predict("m", "Great food.").version == 1
        host_b.feedback.record_sync("m", [FeedbackInput(text="Cold soup, rude waiter.", label="0")])
        outcome = host_b.training.retrain("m", actor="test")
        if not outcome.promoted:
            host_b.registry.promote("m", outcome.version, actor="test", force=True)
        v2 = host_b.registry.version("m", outcome.version)
    finally:
        host_b.close()
    assert (disk_b / v2.artifact_uri / "manifest.json").is_file()
    assert not disk_a.exists()  # the training process wrote to B's store, not to a host path of A

    shutil.copytree(disk_b, disk_a)
    host_a = build_services(make_settings(tmp_path / "host-a", database_url, artifact_url=disk_a.as_uri()))
    try:
        assert host_a.predictions.predict("m", "Great food.").version == v2.version
    finally:
        host_a.close()


def test_erasure_of_a_snapshot_stored_by_absolute_uri_writes_the_cleaned_copy_under_its_key(
    services: Services, make_model: CreateModel, tmp_path: Path
) -> None:
    make_model(services, "m", policy=Policy.of(min_recent_examples=1))
    services.feedback.record_sync("m", [FeedbackInput(text="Alice's own sentence.", label="1", subject="alice")])
    outcome = services.training.retrain("m", actor="test")
    snap = services.registry.snapshot(outcome.snapshot)
    assert snap is not None
    elsewhere = tmp_path / "old disk" / "snap.jsonl.gz"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(services.store.get_bytes(snap.uri))
    with services.db.write() as conn:  # a row from before keys, outside the home's artifacts
        snapshot_repo.set_snapshot_uri(conn, outcome.snapshot, f"file://{elsewhere}")
    assert b"Alice's own sentence." in services.registry.training_data("m", outcome.version)

    report = services.privacy.erase("alice", actor="test")

    assert report.snapshot_rows == 1
    snap = services.registry.snapshot(outcome.snapshot)
    assert snap is not None and snap.uri == f"snapshots/m/{outcome.snapshot}.jsonl.gz"
    assert b"Alice's own sentence." not in gzip.decompress(services.store.get_bytes(snap.uri))
    assert b"Alice's own sentence." not in services.registry.training_data("m", outcome.version)


def test_an_unsupported_artifact_url_is_refused_before_anything_starts(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path}/ll.db", artifact_url="gs://bucket/learnloop")
    with pytest.raises(ValidationError, match=r"gs:// stores are not supported yet \(issue: fleet\)"):
        build_services(settings)
    assert not (tmp_path / "ll.db").exists()

    proc = run_cli("retrain", "--home", tmp_path / "home", "--model", "m", "--artifacts", "gs://b/p", check=False)
    assert proc.returncode == 1
    assert "gs:// stores are not supported yet (issue: fleet)" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
