"""Schema migrations on a real, empty database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import inspect

from learnloop.store.db import Database
from learnloop.store.migrate import current_revision, head_revision, schema_drift, upgrade
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
