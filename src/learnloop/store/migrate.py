"""Apply and check schema migrations, from code and from ``learnloop db``.

Alembic loads only when a migration runs or is inspected: a database already at the newest
revision (every start but the first) is told apart with one query. Each migration's revision id
is its file's four-digit prefix (``versions/0008_join_indexes.py`` is ``"0008"``), so the newest
is the highest prefix; ``tests/integration/test_migrations.py`` checks it is Alembic's head."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect

from learnloop.store.db import Database
from learnloop.store.tables import metadata

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
HOME_ARTIFACTS = "home_artifacts"  # the attribute migrations read it from
VERSION_TABLE = "alembic_version"
# Optuna's tables: its studies live in learnloop's database (``selection.search``), beside
# learnloop's tables, made and migrated by Optuna itself; not learnloop's schema.
OPTUNA_TABLES = frozenset(
    {
        "studies",
        "study_directions",
        "study_user_attributes",
        "study_system_attributes",
        "trials",
        "trial_user_attributes",
        "trial_system_attributes",
        "trial_params",
        "trial_values",
        "trial_intermediate_values",
        "trial_heartbeats",
        "version_info",
    }
)


def newest_revision() -> str:
    """The revision of the newest migration file (its four-digit prefix)."""
    return max(path.name[:4] for path in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def at_newest_revision(db: Database) -> bool:
    """Whether the database is at the newest revision (a database error propagates)."""
    with db.read() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return False
        stamped = list(conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalars())
    return stamped == [newest_revision()]


def alembic_config(db: Database) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head", *, home_artifacts: Path | None = None) -> None:
    """Migrate to ``revision``. ``home_artifacts`` is the home's artifact directory: rows that
    name a file under it by absolute URI are rewritten to keys relative to the store (0004).
    A database already at the newest revision is left as it is without loading Alembic."""
    if revision == "head" and at_newest_revision(db):
        return
    from alembic import command

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
    from alembic import command

    cfg = alembic_config(db)
    with db.write_engine.connect() as conn:
        cfg.attributes["connection"] = conn
        cfg.attributes[HOME_ARTIFACTS] = home_artifacts
        command.downgrade(cfg, revision)
        conn.commit()


def current_revision(db: Database) -> str | None:
    from alembic.migration import MigrationContext

    with db.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(db: Database) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()


def schema_drift(db: Database) -> list[object]:
    """Differences between the migrated database and ``tables.metadata`` (empty when they agree)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    def learnloops(name: str | None, kind: str, parent: object) -> bool:
        return not (kind == "table" and name in OPTUNA_TABLES)

    with db.read() as conn:
        ctx = MigrationContext.configure(conn, opts={"render_as_batch": True, "include_name": learnloops})
        return list(compare_metadata(ctx, metadata))
