"""Artifacts in S3-compatible storage, against a real server process (moto) on 127.0.0.1: a
tampered or truncated object is refused by its hash, an unreachable store is a clear error,
and ``learnloop init --artifacts s3://...`` writes there (a replica process serving from S3:
``tests/e2e/test_s3_replica.py``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import create_model, free_port, make_settings, uci_rows
from learnloop.artifacts import open_store
from learnloop.cli.main import app
from learnloop.domain import Model, ModelVersion
from learnloop.errors import ArtifactError, ModelUnavailableError
from learnloop.families.manifest import load_predictor
from learnloop.policy import Policy
from learnloop.services import build_services
from learnloop.tasks.base import RetrainInputs
from learnloop.tasks.classification.retrain import grouping_key, kept_grouping
from s3_server import aws_environment, s3_client

CreateModel = Callable[..., ModelVersion]
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def object_keys(endpoint: str, url: str) -> list[str]:
    bucket = url.removeprefix("s3://").split("/")[0]
    listed = s3_client(endpoint).list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(str(item["Key"]) for item in listed)


@pytest.mark.parametrize("damage", ["tampered", "truncated"])
def test_a_damaged_model_file_is_refused_on_load_never_half_loaded(
    tmp_path: Path, s3_url: str, s3_endpoint: str, damage: str
) -> None:
    services = build_services(make_settings(tmp_path / "home", f"sqlite:///{tmp_path}/ll.db", artifact_url=s3_url))
    try:
        v1 = create_model(services, "m")
    finally:
        services.close()
    bucket, prefix = s3_url.removeprefix("s3://").split("/", 1)
    client = s3_client(s3_endpoint)
    model_file = next(
        key
        for key in object_keys(s3_endpoint, s3_url)
        if key.startswith(f"{prefix}/{v1.artifact_uri}/") and not key.endswith(("index.json", "manifest.json"))
    )
    data = client.get_object(Bucket=bucket, Key=model_file)["Body"].read()
    damaged = data[: len(data) // 2] if damage == "truncated" else data[:-1] + bytes([data[-1] ^ 1])
    client.put_object(Bucket=bucket, Key=model_file, Body=damaged)

    fresh = open_store(s3_url, tmp_path / "other host cache")
    with pytest.raises(ArtifactError, match=r"does not match its recorded SHA-256 \(tampered or truncated\)"):
        load_predictor(fresh, v1.artifact_uri)
    assert not any((tmp_path / "other host cache").rglob(Path(model_file).name))  # nothing half-downloaded kept

    replica = build_services(make_settings(tmp_path / "replica", f"sqlite:///{tmp_path}/ll.db", artifact_url=s3_url))
    try:
        with pytest.raises(ModelUnavailableError, match="does not match its recorded SHA-256"):
            replica.predictions.predict("m", "Great food.")
    finally:
        replica.close()


def test_a_tampered_blob_is_refused(s3_url: str, s3_endpoint: str) -> None:
    store = open_store(s3_url)
    store.put_bytes("snapshots/m/h.jsonl.gz", b"the rows")
    bucket, prefix = s3_url.removeprefix("s3://").split("/", 1)
    client = s3_client(s3_endpoint)
    key = f"{prefix}/snapshots/m/h.jsonl.gz"
    metadata = client.head_object(Bucket=bucket, Key=key)["Metadata"]
    client.put_object(Bucket=bucket, Key=key, Body=b"other rows", Metadata=metadata)  # the old digest kept
    with pytest.raises(ArtifactError, match="does not match its recorded SHA-256"):
        store.get_bytes("snapshots/m/h.jsonl.gz")
    client.put_object(Bucket=bucket, Key=key, Body=b"rows put there by hand")
    with pytest.raises(ArtifactError, match="has no recorded SHA-256"):
        store.get_bytes("snapshots/m/h.jsonl.gz")


def test_a_tampered_kept_grouping_is_reported_with_its_reason_and_made_again(
    s3_url: str, s3_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    rows = uci_rows("yelp")
    inputs = RetrainInputs(
        Model("m", "classification", ("0", "1"), "tfidf-logreg", {}, Policy(), NOW), None, None, NOW,
        rows[100:300], rows[:100], [], s3_url, "models/m/v1",
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="learnloop.tasks.classification.retrain"):
        made = kept_grouping(inputs)  # none kept yet: made, stored, nothing to report
        assert caplog.records == []
        bucket, prefix = s3_url.removeprefix("s3://").split("/", 1)
        s3_client(s3_endpoint).put_object(Bucket=bucket, Key=f"{prefix}/{grouping_key('m')}", Body=b"by hand")
        assert kept_grouping(inputs).key == made.key  # grouped again
    [warned] = caplog.records
    assert "cannot be read" in warned.getMessage() and "has no recorded SHA-256" in warned.getMessage()
    assert open_store(s3_url).get_bytes(grouping_key("m")) != b"by hand"  # replaced by a sound one


def test_an_index_naming_a_generation_outside_the_directory_is_refused(
    tmp_path: Path, s3_url: str, s3_endpoint: str
) -> None:
    store = open_store(s3_url, tmp_path / "cache")
    source = tmp_path / "d"
    source.mkdir()
    (source / "f").write_bytes(b"x")
    store.put_dir("models/m/v1", source)
    bucket, prefix = s3_url.removeprefix("s3://").split("/", 1)
    index = b'{"generation": "../../../elsewhere", "files": {}}'
    s3_client(s3_endpoint).put_object(Bucket=bucket, Key=f"{prefix}/models/m/v1/index.json", Body=index)
    with pytest.raises(ArtifactError, match=r"models/m/v1 has a corrupt index\.json"):
        store.get_dir("models/m/v1")


def test_an_unreachable_store_is_a_clear_artifact_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in aws_environment(f"http://127.0.0.1:{free_port()}").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    store = open_store("s3://nowhere/learnloop", tmp_path)
    with pytest.raises(ArtifactError, match=r"artifact store s3://nowhere/learnloop: cannot write k"):
        store.put_bytes("k", b"v")


def test_learnloop_init_with_artifacts_in_s3_is_served_from_another_home(
    tmp_path: Path, s3_url: str, s3_endpoint: str
) -> None:
    """The CLI path: ``learnloop init --artifacts s3://...`` (in process), and a second home on
    the same database serving from the bucket."""
    data = tmp_path / "yelp.tsv"
    data.write_text("".join(f"{text}\t{label}\n" for text, label in uci_rows("yelp")[:300]))
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    common = ["--home", str(tmp_path / "host-a"), "--database-url", database, "--artifacts", s3_url]
    runner = CliRunner()
    init = runner.invoke(app, ["init", *common, "--model", "m", "--data", str(data), "--format", "tsv",
                               "--no-header", "--text-column", "0", "--label-column", "1"])  # fmt: skip
    assert init.exit_code == 0, init.output
    assert any(key.endswith("/index.json") for key in object_keys(s3_endpoint, s3_url))
    assert not (tmp_path / "host-a" / "artifacts").exists()

    host_b = build_services(make_settings(tmp_path / "host-b", database, artifact_url=s3_url))
    try:
        assert host_b.predictions.predict("m", "Great food.").version == 1
    finally:
        host_b.close()
