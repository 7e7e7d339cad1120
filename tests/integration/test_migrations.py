"""Schema migrations on a real database: empty, and (0004) filled at the revision before."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, update

from conftest import create_model, make_settings, register_version, uci_rows
from learnloop.artifacts import open_store
from learnloop.config import Settings
from learnloop.domain import FeedbackEvent, FeedbackInput
from learnloop.families import get_family
from learnloop.families.manifest import save_predictor
from learnloop.policy import Policy
from learnloop.services import Services, build_services
from learnloop.store import tables as t
from learnloop.store.db import Database
from learnloop.store.migrate import (
    MIGRATIONS,
    alembic_config,
    at_newest_revision,
    current_revision,
    downgrade,
    head_revision,
    newest_revision,
    schema_drift,
    upgrade,
)
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import models as model_repo
from learnloop.store.tables import UTCDateTime, metadata


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """These tests run the migrations themselves: every database starts empty."""
    return empty_database_url


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


def test_the_newest_migration_file_names_alembics_head_and_every_revision_is_its_files_prefix(db: Database) -> None:
    """``upgrade`` skips Alembic on a database stamped with ``newest_revision()``: that must be
    the head Alembic would migrate to."""
    assert newest_revision() == head_revision(db)
    for script in ScriptDirectory.from_config(alembic_config(db)).walk_revisions():
        assert script.path is not None and Path(script.path).name[:4] == script.revision, script.path
    assert len(list((MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))) == len(
        list(ScriptDirectory.from_config(alembic_config(db)).walk_revisions())
    )


def test_a_database_behind_the_newest_revision_is_still_upgraded(db: Database) -> None:
    assert not at_newest_revision(db)  # empty: no version table
    upgrade(db, "0007")
    assert not at_newest_revision(db)
    upgrade(db)
    assert at_newest_revision(db) and current_revision(db) == head_revision(db)
    assert schema_drift(db) == []


def test_schema_drift_notices_a_table_the_migrations_did_not_make(db: Database) -> None:
    # The check must be able to fail: an extra table is drift.
    upgrade(db)
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE stray (id INTEGER PRIMARY KEY)")
    drift = schema_drift(db)
    assert any("stray" in repr(diff) for diff in drift)


# -- 0004: task payloads --------------------------------------------------------------------

_OLD_PREDICTIONS = sa.table(
    "predictions",
    *(sa.column(name) for name in ("id", "model", "version", "route", "text", "label", "probabilities", "subject")),
    sa.column("created_at", UTCDateTime),
    sa.column("latency_ms"),
)
_OLD_FEEDBACK = sa.table(
    "feedback",
    *(sa.column(name) for name in ("id", "model", "prediction_id", "kind", "label", "thumbs", "rating", "text")),
    sa.column("metadata", sa.JSON),
    sa.column("created_at", UTCDateTime),
)
_OLD_MODELS = sa.table(
    "models",
    sa.column("name"),
    sa.column("task"),
    *(sa.column(name, sa.JSON) for name in ("labels", "params", "policy")),
    sa.column("family"),
    sa.column("created_at", UTCDateTime),
)


def test_a_database_filled_at_the_previous_head_upgrades_serves_and_keeps_its_feedback_joined(
    tmp_path: Path, database_url: str, shipped_rows: Callable[[str], list[tuple[str, str]]]
) -> None:
    db = Database(database_url)
    upgrade(db, "0003")
    now = datetime.now(UTC)
    rows = shipped_rows("yelp")
    # A model as learnloop 0003 stored it: task "binary", a flat policy, a trained champion.
    family = get_family("tfidf-logreg")
    predictor = family.fit([t for t, _ in rows], [lab for _, lab in rows], label_set=["0", "1"], params={})
    artifacts = tmp_path / "home" / "artifacts"
    key = save_predictor(open_store(artifacts.as_uri()), "models/m/v1", "tfidf-logreg", predictor, {})
    uri = f"{artifacts.as_uri()}/{key}"  # 0003 stored absolute file URIs
    flat_policy = {**Policy().to_dict(), "retrain_every": 7, "recent_holdout_fraction": 0.2}
    pid = [str(uuid.UUID(int=i)) for i in range(1, 5)]
    with db.write() as conn:
        conn.execute(
            sa.insert(_OLD_MODELS).values(
                name="m",
                task="binary",
                labels=["0", "1"],
                params={},
                policy=flat_policy,
                family="tfidf-logreg",
                created_at=now,
            )
        )
        model_repo.insert_examples(conn, "m", "train", rows[:800], "uci:yelp")
        model_repo.insert_examples(conn, "m", "golden", rows[800:], "uci:yelp")
        conn.execute(
            sa.text(
                "INSERT INTO model_versions (model, version, status, family, params, code_version, metrics, "
                "artifact_uri, created_at) VALUES ('m', 1, 'champion', 'tfidf-logreg', '{}', 'old', '{}', :uri, :at)"
            ).bindparams(sa.bindparam("at", type_=UTCDateTime)),
            {"uri": uri, "at": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO deployments (model, champion_version, previous_version, revision, updated_at) "
                "VALUES ('m', 1, NULL, 1, :at)"
            ).bindparams(sa.bindparam("at", type_=UTCDateTime)),
            {"at": now},
        )
        conn.execute(
            sa.insert(_OLD_PREDICTIONS),
            [
                {
                    "id": p,
                    "model": "m",
                    "version": 1,
                    "route": "champion",
                    "text": f"old review {i}",
                    "label": "1",
                    "probabilities": '{"0": 0.25, "1": 0.75}',
                    "subject": None,
                    "created_at": now,
                    "latency_ms": 0.5,
                }
                for i, p in enumerate(pid[:3])
            ],
        )
        kinds = [("label", {"label": "0"}), ("thumbs", {"thumbs": "down"}), ("rating", {"rating": 5})]
        conn.execute(
            sa.insert(_OLD_FEEDBACK),
            [
                {
                    "id": f"f{i}",
                    "model": "m",
                    "prediction_id": pid[i],
                    "kind": kind,
                    "label": None,
                    "thumbs": None,
                    "rating": None,
                    "text": None,
                    "metadata": {"n": i},
                    "created_at": now,
                    **values,
                }
                for i, (kind, values) in enumerate(kinds)
            ]
            + [
                {
                    "id": "f3",
                    "model": "m",
                    "prediction_id": None,
                    "kind": "example",
                    "label": "1",
                    "thumbs": None,
                    "rating": None,
                    "text": "A standalone old example.",
                    "metadata": None,
                    "created_at": now,
                },
                {
                    "id": "f4",
                    "model": "m",
                    "prediction_id": pid[3],
                    "kind": "label",
                    "label": "1",
                    "thumbs": None,
                    "rating": None,
                    "text": None,
                    "metadata": None,
                    "created_at": now,
                },  # its prediction never logged
            ],
        )
    db.dispose()

    services = build_services(make_settings(tmp_path / "home", database_url))
    try:
        model = services.registry.get_model("m")
        assert model.task == "classification" and model.policy.triggers.retrain_every == 7
        events = {e.id: e for e in feedback_repo_rows(services)}
        assert [events[f"f{i}"].feedback.payload for i in range(5)] == [
            {"label": "0"},
            {"thumbs": "down"},
            {"rating": 5},
            {"text": "A standalone old example.", "label": "1"},
            {"label": "1"},
        ]
        for i in range(3):
            served = events[f"f{i}"].served
            assert served is not None and served.text == f"old review {i}"
            assert served.answer == {"label": "1", "probabilities": {"0": 0.25, "1": 0.75}}
        assert events["f3"].served is None and events["f4"].served is None
        assert services.feedback.get("m", "f1").thumbs == "down"
        answer = services.predictions.predict("m", "The food was wonderful and the staff kind.")
        assert answer.version == 1 and answer.label in ("0", "1")
        performance = services.performance.performance("m")
        assert performance.online.n == 3 and performance.online.accuracy == pytest.approx(1 / 3)
        outcome = services.training.retrain("m", actor="test")
        counts = services.registry.snapshot(outcome.snapshot).counts  # type: ignore[union-attr]
        assert counts["feedback"]["examples"] == 4 and counts["feedback"]["pending_prediction"] == 1
    finally:
        services.close()


# -- 0004: artifact keys relative to the store ----------------------------------------------------


def revision_before_keys(db: Database) -> str:
    script = ScriptDirectory.from_config(alembic_config(db))
    (keys,) = [r for r in script.walk_revisions() if (r.doc or "").startswith("artifact keys relative")]
    assert isinstance(keys.down_revision, str)
    return keys.down_revision


def back_to_before_keys(db: Database, settings: Settings) -> None:
    """Take a database filled at the head back to the revision before keys: its downgrade
    writes what learnloop wrote then (``file://`` + the absolute path of every artifact). Data
    is made at the head because the code of the head reads its own schema."""
    downgrade(db, revision_before_keys(db), home_artifacts=settings.home_artifacts_dir)
    root = f"file://{settings.home_artifacts_dir}/"
    with db.read() as conn:
        assert all(uri.startswith(root) for uri in conn.execute(select(t.model_versions.c.artifact_uri)).scalars())


def test_a_database_with_absolute_artifact_uris_upgrades_to_keys_then_serves_and_retrains(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "home", database_url)
    services = build_services(settings)
    try:
        create_model(services, "m", policy=Policy.of(min_recent_examples=1))
        v2 = register_version(services, "m", uci_rows("imdb"), note="stored outside the home")
    finally:
        services.close()
    elsewhere = tmp_path / "another disk" / "v2"
    shutil.move(settings.home_artifacts_dir / v2.artifact_uri, elsewhere)
    back_to_before_keys(db, settings)
    with db.write() as conn:
        versions = t.model_versions
        conn.execute(
            update(versions).where(versions.c.version == v2.version).values(artifact_uri=f"file://{elsewhere}")
        )

    upgrade(db, home_artifacts=settings.home_artifacts_dir)

    assert current_revision(db) == head_revision(db) and schema_drift(db) == []
    services = build_services(settings)
    try:
        v1 = services.registry.version("m", 1)
        assert v1.artifact_uri.startswith("models/m/") and v1.metrics["drift_reference"].startswith("drift/m/")
        assert services.registry.version("m", 2).artifact_uri == f"file://{elsewhere}"  # left as it was
        snapshot = services.registry.snapshot(str(v1.snapshot_hash))
        assert snapshot is not None and snapshot.uri == f"snapshots/m/{v1.snapshot_hash}.jsonl.gz"

        assert services.predictions.predict("m", "The pasta was superb.").version == 1
        assert services.registry.training_data("m", 1).count(b"\n") == snapshot.counts["train"]
        assert services.drift.check("m").results  # the reference is read by its key
        services.registry.promote("m", 2, actor="test")  # an absolute URI outside the home still loads
        assert services.predictions.predict("m", "The pasta was superb.").version == 2
        services.feedback.record_sync("m", [FeedbackInput(text="A dull, slow film.", label="0")])
        outcome = services.training.retrain("m", actor="test")
        assert services.registry.version("m", outcome.version).artifact_uri.startswith("models/m/")
    finally:
        services.close()


def feedback_repo_rows(services: Services) -> list[FeedbackEvent]:
    with services.db.read() as conn:
        return feedback_repo.feedback_with_predictions(conn, "m", datetime.now(UTC))


def test_the_keys_migration_needs_the_homes_artifact_directory_when_rows_hold_file_uris(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "home", database_url)
    services = build_services(settings)
    try:
        create_model(services, "m")
    finally:
        services.close()
    back_to_before_keys(db, settings)
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
