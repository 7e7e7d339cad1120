"""Optuna keeps its studies in learnloop's database, in tables it makes itself on first use
(``selection.search``). Two processes making them at once on PostgreSQL race (both try to
create the same enum type); ``study_tables_lock`` serialises that first use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from learnloop.store.db import Database

LOCK_KEY = 0x6C6C_6F70  # "llop": the advisory lock of Optuna's table creation


@contextmanager
def study_tables_lock(db: Database) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock while the body runs (SQLite: its write lock already
    serialises schema changes; nothing to do)."""
    if db.is_sqlite:
        yield
        return
    with db.write_engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({LOCK_KEY})")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({LOCK_KEY})")
            conn.commit()
