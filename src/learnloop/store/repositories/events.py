"""The audit trail: append-only events.
Takes and returns domain records; table rows never leave ``store``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.engine import RowMapping

from learnloop.domain import (
    Event,
)
from learnloop.store import tables as t


def insert_event(
    conn: Connection,
    *,
    model: str,
    kind: str,
    at: datetime,
    actor: str,
    version: int | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        insert(t.events).values(
            model=model,
            kind=kind,
            version=version,
            actor=actor,
            reason=reason,
            data=data or {},
            created_at=at,
        )
    )


def _event(row: RowMapping) -> Event:
    return Event(
        id=row["id"],
        model=row["model"],
        kind=row["kind"],
        version=row["version"],
        actor=row["actor"],
        reason=row["reason"],
        data=dict(row["data"]),
        created_at=row["created_at"],
    )


def list_events(
    conn: Connection,
    model: str,
    limit: int = 50,
    after_id: int | None = None,
    kinds: Sequence[str] | None = None,
) -> list[Event]:
    """The newest ``limit`` events (of ``kinds``, if given), newest first; with ``after_id``, the
    oldest ``limit`` after it, oldest first (to follow the trail)."""
    q = select(t.events).where(t.events.c.model == model)
    if kinds:
        q = q.where(t.events.c.kind.in_(list(kinds)))
    if after_id is None:
        q = q.order_by(t.events.c.id.desc()).limit(limit)
    else:
        q = q.where(t.events.c.id > after_id).order_by(t.events.c.id).limit(limit)
    return [_event(r) for r in conn.execute(q).mappings()]


def latest_event(conn: Connection, model: str, kinds: Sequence[str]) -> Event | None:
    found = list_events(conn, model, 1, None, kinds)
    return found[0] if found else None


def versions_registered_by(conn: Connection, model: str, actor: str) -> list[int]:
    """Versions of ``model`` whose registration event names ``actor`` (e.g. ``job:<id>``)."""
    q = select(t.events.c.version).where(
        t.events.c.model == model,
        t.events.c.kind == "version_registered",
        t.events.c.actor == actor,
        t.events.c.version.is_not(None),
    )
    return [int(v) for v in conn.execute(q).scalars()]


def list_all_events(conn: Connection, after_id: int, limit: int = 500) -> list[Event]:
    """Events of every model after ``after_id``, oldest first (what notifiers follow)."""
    q = select(t.events).where(t.events.c.id > after_id).order_by(t.events.c.id).limit(limit)
    return [_event(r) for r in conn.execute(q).mappings()]


def get_event(conn: Connection, event_id: int) -> Event | None:
    row = conn.execute(select(t.events).where(t.events.c.id == event_id)).mappings().first()
    return _event(row) if row is not None else None


def max_event_id(conn: Connection) -> int:
    return int(conn.execute(select(func.max(t.events.c.id))).scalar() or 0)
