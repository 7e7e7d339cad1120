"""artifact keys relative to the store, not absolute file URIs

A row that names a file under the home's artifact directory by absolute URI
(``file:///home/me/.learnloop/artifacts/models/m/abc-v1``) is rewritten to its key
(``models/m/abc-v1``): ``model_versions.artifact_uri``, ``snapshots.uri`` and the drift
reference in ``model_versions.metrics``. Anything else is left as it is (stores still read
absolute file URIs). The schema does not change.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DRIFT_REFERENCE = "drift_reference"  # the metrics key ``drift.reference`` uses
FILE = "file://"

versions = sa.table(
    "model_versions",
    sa.column("id", sa.Integer),
    sa.column("artifact_uri", sa.Text),
    sa.column("metrics", sa.JSON),
)
snapshots = sa.table("snapshots", sa.column("hash", sa.String), sa.column("uri", sa.Text))


def _root() -> str | None:
    """``file://<home's artifact directory>``, as the code before keys wrote it (no quoting)."""
    home_artifacts = context.config.attributes.get("home_artifacts")
    return None if home_artifacts is None else f"{FILE}{Path(home_artifacts).resolve()}"


def _to_key(value: Any, root: str) -> Any:
    prefix = root + "/"
    return value[len(prefix) :] if isinstance(value, str) and value.startswith(prefix) else value


def _to_uri(value: Any, root: str) -> Any:
    return f"{root}/{value}" if isinstance(value, str) and value and "://" not in value else value


def _rewrite(change: Any) -> None:
    bind = op.get_bind()
    for row in bind.execute(sa.select(versions.c.id, versions.c.artifact_uri, versions.c.metrics)).all():
        metrics = dict(row.metrics or {})
        if DRIFT_REFERENCE in metrics:
            metrics[DRIFT_REFERENCE] = change(metrics[DRIFT_REFERENCE])
        uri = change(row.artifact_uri)
        if uri != row.artifact_uri or metrics != (row.metrics or {}):
            bind.execute(sa.update(versions).where(versions.c.id == row.id).values(artifact_uri=uri, metrics=metrics))
    for snap in bind.execute(sa.select(snapshots.c.hash, snapshots.c.uri)).all():
        uri = change(snap.uri)
        if uri != snap.uri:
            bind.execute(sa.update(snapshots).where(snapshots.c.hash == snap.hash).values(uri=uri))


def _require_root(needed: bool) -> str | None:
    root = _root()
    if root is None and needed:
        raise RuntimeError(
            "migration 0004 rewrites artifact locations and needs the home's artifact directory: "
            "run `learnloop db upgrade --home DIR` (or learnloop.store.migrate.upgrade(db, home_artifacts=...))"
        )
    return root


def _any(condition: Any) -> bool:
    bind = op.get_bind()
    found = bind.execute(sa.select(versions.c.id).where(condition(versions.c.artifact_uri)).limit(1)).first()
    return found is not None or (
        bind.execute(sa.select(snapshots.c.hash).where(condition(snapshots.c.uri)).limit(1)).first() is not None
    )


def upgrade() -> None:
    root = _require_root(_any(lambda column: column.like(f"{FILE}%")))
    if root is not None:
        _rewrite(lambda value: _to_key(value, root))


def downgrade() -> None:
    root = _require_root(_any(lambda column: column.not_like("%://%")))
    if root is not None:
        _rewrite(lambda value: _to_uri(value, root))
