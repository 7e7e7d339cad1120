"""Schema migrations on a real database: empty, and (0004) filled at the revision before."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, update

from conftest import create_model, make_settings, register_version, uci_rows
from learnloop.feedback.intake import FeedbackInput
from learnloop.policy import Policy
from learnloop.services import build_services
from learnloop.store import tables as t
from learnloop.store.db import Database
from learnloop.store.migrate import (
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    schema_drift,
    upgrade,
)
from learnloop.store.tables import metadata


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        database.dispose()


def test_upgrade_creates_every_table_and_matches_the_models(db: Database) -> None:
    assert current_revision(db) is None
    upgrade(db)
    assert current_revision(db) == head_revision(db)
    with db.read() as conn:
        tables = set(inspect(conn).get_table_names())
    assert set(metadata.tables) <= tables
    assert schema_drift(db) == []


def test_upgrade_twice_is_a_no_op(db: Database) -> None:
    upgrade(db)
    revision = current_revision(db)
    upgrade(db)
    assert current_revision(db) == revision == head_revision(db)
    assert schema_drift(db) == []


def test_schema_drift_notices_a_table_the_migrations_did_not_make(db: Database) -> None:
    # The check must be able to fail: an extra table is drift.
    upgrade(db)
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE stray (id INTEGER PRIMARY KEY)")
    drift = schema_drift(db)
    assert any("stray" in repr(diff) for diff in drift)


# -- 0004: artifact keys relative to the store ----------------------------------------------------


def revision_before_keys(db: Database) -> str:
    script = ScriptDirectory.from_config(alembic_config(db))
    (keys,) = [r for r in script.walk_revisions() if (r.doc or "").startswith("artifact keys relative")]
    assert isinstance(keys.down_revision, str)
    return keys.down_revision


def write_as_before_keys(db: Database, root: str, outside: tuple[int, str]) -> None:
    """What learnloop wrote before keys: ``file://`` + the absolute path of every artifact."""
    with db.write() as conn:
        for row in conn.execute(select(t.model_versions)).mappings().all():
            metrics = dict(row["metrics"])
            if metrics.get("drift_reference"):
                metrics["drift_reference"] = f"{root}/{metrics['drift_reference']}"
            uri = outside[1] if row["version"] == outside[0] else f"{root}/{row['artifact_uri']}"
            conn.execute(
                update(t.model_versions)
                .where(t.model_versions.c.id == row["id"])
                .values(artifact_uri=uri, metrics=metrics)
            )
        for snap in conn.execute(select(t.snapshots)).mappings().all():
            conn.execute(
                update(t.snapshots).where(t.snapshots.c.hash == snap["hash"]).values(uri=f"{root}/{snap['uri']}")
            )


def test_a_database_with_absolute_artifact_uris_upgrades_to_keys_then_serves_and_retrains(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "home", database_url)
    upgrade(db, revision_before_keys(db))
    services = build_services(settings, migrate=False)
    try:
        create_model(services, "m", policy=Policy.of(min_recent_examples=1))
        v2 = register_version(services, "m", uci_rows("imdb"), note="stored outside the home")
    finally:
        services.close()
    elsewhere = tmp_path / "another disk" / "v2"
    shutil.move(settings.home_artifacts_dir / v2.artifact_uri, elsewhere)
    root = f"file://{settings.home_artifacts_dir}"
    write_as_before_keys(db, root, (v2.version, f"file://{elsewhere}"))

    upgrade(db, home_artifacts=settings.home_artifacts_dir)

    assert current_revision(db) == head_revision(db) and schema_drift(db) == []
    services = build_services(settings)
    try:
        v1 = services.registry.version("m", 1)
        assert v1.artifact_uri.startswith("models/m/") and v1.metrics["drift_reference"].startswith("drift/m/")
        assert services.registry.version("m", 2).artifact_uri == f"file://{elsewhere}"  # left as it was
        snapshot = services.registry.snapshot(str(v1.snapshot_hash))
        assert snapshot is not None and snapshot["uri"] == f"snapshots/m/{v1.snapshot_hash}.jsonl.gz"

        assert services.predictions.predict("m", "The pasta was superb.").version == 1
        assert services.registry.training_data("m", 1).count(b"\n") == snapshot["counts"]["train"]
        assert services.drift.check("m").results  # the reference is read by its key
        services.registry.promote("m", 2, actor="test")  # an absolute URI outside the home still loads
        assert services.predictions.predict("m", "The pasta was superb.").version == 2
        services.feedback.record_sync("m", [FeedbackInput(text="A dull, slow film.", label="0")])
        outcome = services.training.retrain("m", actor="test")
        assert services.registry.version("m", outcome.version).artifact_uri.startswith("models/m/")
    finally:
        services.close()


def test_the_keys_migration_needs_the_homes_artifact_directory_when_rows_hold_file_uris(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "home", database_url)
    upgrade(db, revision_before_keys(db))
    services = build_services(settings, migrate=False)
    try:
        create_model(services, "m")
    finally:
        services.close()
    write_as_before_keys(db, f"file://{settings.home_artifacts_dir}", (0, ""))
    with pytest.raises(RuntimeError, match="needs the home's artifact directory"):
        upgrade(db)
    assert current_revision(db) == revision_before_keys(db)  # nothing half done

    upgrade(db, home_artifacts=settings.home_artifacts_dir)
    with db.read() as conn:
        assert conn.execute(select(t.model_versions.c.artifact_uri)).scalar_one().startswith("models/m/")
    downgrade(db, revision_before_keys(db), home_artifacts=settings.home_artifacts_dir)
    with db.read() as conn:
        (uri,) = conn.execute(select(t.model_versions.c.artifact_uri)).one()
    assert uri.startswith(f"file://{settings.home_artifacts_dir}/models/m/")
