"""Apply and check schema migrations, from code and from ``learnloop db``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from learnloop.store.db import Database
from learnloop.store.tables import metadata

MIGRATIONS = Path(__file__).with_name("migrations")
HOME_ARTIFACTS = "home_artifacts"  # the attribute migrations read it from


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head", *, home_artifacts: Path | None = None) -> None:
    """Migrate to ``revision``. ``home_artifacts`` is the home's artifact directory: rows that
    name a file under it by absolute URI are rewritten to keys relative to the store (0004)."""
    cfg = alembic_config(db)
    with db.write_engine.connect() as conn:
        if not db.is_sqlite:  # building an index on a large table may outlast the statement timeout
            conn.exec_driver_sql("SET statement_timeout = 0")
        cfg.attributes["connection"] = conn
        cfg.attributes[HOME_ARTIFACTS] = home_artifacts
        command.upgrade(cfg, revision)
        conn.commit()
        if not db.is_sqlite:
            conn.exec_driver_sql("RESET statement_timeout")  # back to the connection's own
            conn.commit()


def downgrade(db: Database, revision: str, *, home_artifacts: Path | None = None) -> None:
    """Migrate back to ``revision`` (0004 turns keys back into absolute file URIs)."""
    cfg = alembic_config(db)
    with db.write_engine.connect() as conn:
        cfg.attributes["connection"] = conn
        cfg.attributes[HOME_ARTIFACTS] = home_artifacts
        command.downgrade(cfg, revision)
        conn.commit()


def current_revision(db: Database) -> str | None:
    with db.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(db: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()


def schema_drift(db: Database) -> list[object]:
    """Differences between the migrated database and ``tables.metadata`` (empty when they agree)."""
    with db.read() as conn:
        ctx = MigrationContext.configure(conn, opts={"render_as_batch": True})
        return list(compare_metadata(ctx, metadata))
