"""Dataset snapshots: content-addressed training sets.
Takes and returns domain records; table rows never leave ``store``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.engine import RowMapping

from learnloop.domain import StoredSnapshot
from learnloop.store import tables as t


def upsert_snapshot(
    conn: Connection,
    *,
    hash: str,
    model: str,
    uri: str,
    counts: dict[str, Any],
    cutoff: datetime | None,
    at: datetime,
) -> None:
    exists = conn.execute(select(t.snapshots.c.hash).where(t.snapshots.c.hash == hash)).first()
    if not exists:
        conn.execute(
            insert(t.snapshots).values(hash=hash, model=model, uri=uri, counts=counts, cutoff=cutoff, created_at=at)
        )


def _snapshot(row: RowMapping) -> StoredSnapshot:
    return StoredSnapshot(
        hash=row["hash"],
        model=row["model"],
        uri=row["uri"],
        counts=dict(row["counts"]),
        cutoff=row["cutoff"],
        created_at=row["created_at"],
    )


def get_snapshot(conn: Connection, hash: str) -> StoredSnapshot | None:
    row = conn.execute(select(t.snapshots).where(t.snapshots.c.hash == hash)).mappings().first()
    return _snapshot(row) if row else None


def list_snapshots(conn: Connection, model: str) -> list[StoredSnapshot]:
    q = select(t.snapshots).where(t.snapshots.c.model == model).order_by(t.snapshots.c.created_at)
    return [_snapshot(r) for r in conn.execute(q).mappings()]


def mark_snapshot_erasure(conn: Connection, snapshot_hash: str, rows: int, at: datetime) -> None:
    counts = dict(conn.execute(select(t.snapshots.c.counts).where(t.snapshots.c.hash == snapshot_hash)).scalar_one())
    counts["erasures"] = [*counts.get("erasures", []), {"rows": rows, "at": at.isoformat()}]
    conn.execute(update(t.snapshots).where(t.snapshots.c.hash == snapshot_hash).values(counts=counts))


def set_snapshot_uri(conn: Connection, snapshot_hash: str, uri: str) -> None:
    conn.execute(update(t.snapshots).where(t.snapshots.c.hash == snapshot_hash).values(uri=uri))


def hand_over_snapshot(conn: Connection, snapshot_hash: str, model: str, uri: str) -> None:
    """Give a snapshot to another model that trained on the same content (its owner is deleted)."""
    conn.execute(update(t.snapshots).where(t.snapshots.c.hash == snapshot_hash).values(model=model, uri=uri))


def delete_for_model(conn: Connection, model: str) -> int:
    return conn.execute(delete(t.snapshots).where(t.snapshots.c.model == model)).rowcount
