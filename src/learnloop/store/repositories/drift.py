"""Drift checks of serving versions.
Takes and returns domain records; table rows never leave ``store``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.engine import RowMapping

from learnloop.domain import (
    DriftCheck,
)
from learnloop.store import tables as t


def _drift_check(row: RowMapping) -> DriftCheck:
    return DriftCheck(
        id=row["id"],
        model=row["model"],
        version=row["version"],
        n=row["n"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        drifted=bool(row["drifted"]),
        results=list(row["results"]),
        created_at=row["created_at"],
    )


def insert_drift_check(
    conn: Connection,
    *,
    model: str,
    version: int,
    n: int,
    window_start: datetime | None,
    window_end: datetime | None,
    drifted: bool,
    results: Sequence[dict[str, Any]],
    at: datetime,
) -> DriftCheck:
    values = {
        "model": model,
        "version": version,
        "n": n,
        "window_start": window_start,
        "window_end": window_end,
        "drifted": drifted,
        "results": list(results),
        "created_at": at,
    }
    check_id = conn.execute(insert(t.drift_checks).values(**values).returning(t.drift_checks.c.id)).scalar_one()
    row = conn.execute(select(t.drift_checks).where(t.drift_checks.c.id == check_id)).mappings().one()
    return _drift_check(row)


def latest_drift_check(conn: Connection, model: str, version: int | None = None) -> DriftCheck | None:
    """The model's newest drift check (of ``version``, if given)."""
    q = select(t.drift_checks).where(t.drift_checks.c.model == model)
    if version is not None:
        q = q.where(t.drift_checks.c.version == version)
    row = conn.execute(q.order_by(t.drift_checks.c.id.desc()).limit(1)).mappings().first()
    return _drift_check(row) if row is not None else None


def list_drift_checks(conn: Connection, model: str, limit: int = 20) -> list[DriftCheck]:
    """The model's newest ``limit`` drift checks, newest first."""
    q = select(t.drift_checks).where(t.drift_checks.c.model == model).order_by(t.drift_checks.c.id.desc()).limit(limit)
    return [_drift_check(r) for r in conn.execute(q).mappings()]


def delete_for_model(conn: Connection, model: str) -> int:
    return conn.execute(delete(t.drift_checks).where(t.drift_checks.c.model == model)).rowcount
