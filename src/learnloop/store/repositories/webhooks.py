"""Webhooks, their deliveries and the notifiers' cursors over the event log.
Takes and returns domain records; table rows never leave ``store``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping

from learnloop.domain import Delivery, DeliveryStatus, Webhook
from learnloop.errors import NotFoundError
from learnloop.store import tables as t


def get_cursor(conn: Connection, name: str, *, for_update: bool = False) -> int | None:
    q = select(t.cursors.c.event_id).where(t.cursors.c.name == name)
    if for_update:
        q = q.with_for_update()
    value = conn.execute(q).scalar()
    return None if value is None else int(value)


def init_cursor(conn: Connection, name: str, event_id: int, at: datetime) -> None:
    """Create the cursor unless another process just did."""
    stmt_factory = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(stmt_factory(t.cursors).values(name=name, event_id=event_id, updated_at=at).on_conflict_do_nothing())


def set_cursor(conn: Connection, name: str, event_id: int, at: datetime) -> None:
    conn.execute(update(t.cursors).where(t.cursors.c.name == name).values(event_id=event_id, updated_at=at))


def _webhook(row: RowMapping) -> Webhook:
    return Webhook(
        id=row["id"],
        url=row["url"],
        model=row["model"],
        kinds=tuple(row["kinds"]),
        format=row["format"],
        active=bool(row["active"]),
        created_at=row["created_at"],
        secret=row["secret"],
    )


def insert_webhook(
    conn: Connection, *, url: str, model: str | None, kinds: Sequence[str], format: str, secret: str, at: datetime
) -> Webhook:
    result = conn.execute(
        insert(t.webhooks)
        .values(url=url, model=model, kinds=list(kinds), format=format, secret=secret, active=True, created_at=at)
        .returning(t.webhooks.c.id)
    )
    return get_webhook(conn, int(result.scalar_one()))


def get_webhook(conn: Connection, webhook_id: int, *, active_only: bool = True) -> Webhook:
    q = select(t.webhooks).where(t.webhooks.c.id == webhook_id)
    if active_only:
        q = q.where(t.webhooks.c.active.is_(True))
    row = conn.execute(q).mappings().first()
    if row is None:
        raise NotFoundError(f"webhook {webhook_id} not found", field="webhook_id")
    return _webhook(row)


def list_webhooks(conn: Connection, *, active_only: bool = True) -> list[Webhook]:
    q = select(t.webhooks).order_by(t.webhooks.c.id)
    if active_only:
        q = q.where(t.webhooks.c.active.is_(True))
    return [_webhook(r) for r in conn.execute(q).mappings()]


def deactivate_webhook(conn: Connection, webhook_id: int, at: datetime) -> int:
    """Remove a webhook (kept, inactive, with its delivery history); its pending deliveries
    fail. Returns how many were pending."""
    get_webhook(conn, webhook_id)  # NotFoundError when unknown or removed already
    conn.execute(update(t.webhooks).where(t.webhooks.c.id == webhook_id).values(active=False))
    result = conn.execute(
        update(t.deliveries)
        .where(t.deliveries.c.webhook_id == webhook_id, t.deliveries.c.status == DeliveryStatus.PENDING.value)
        .values(status=DeliveryStatus.FAILED.value, last_error="webhook removed", next_attempt_at=None)
    )
    return int(result.rowcount or 0)


def insert_deliveries(conn: Connection, pairs: Sequence[tuple[int, int]], at: datetime) -> int:
    """One pending delivery per (webhook id, event id); a pair that exists already is left
    alone (the unique constraint makes re-reading events harmless). Returns how many are new."""
    if not pairs:
        return 0
    stmt_factory = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    rows = [
        {
            "webhook_id": webhook_id,
            "event_id": event_id,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
        }
        for webhook_id, event_id in pairs
    ]
    stmt = stmt_factory(t.deliveries).on_conflict_do_nothing().returning(t.deliveries.c.id)
    return len(conn.execute(stmt, rows).scalars().all())


def _delivery(row: RowMapping) -> Delivery:
    return Delivery(
        id=row["id"],
        webhook_id=row["webhook_id"],
        event_id=row["event_id"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        delivered_at=row["delivered_at"],
        event_kind=row.get("event_kind"),
        event_model=row.get("event_model"),
    )


def _deliveries_with_events() -> Any:
    d, e = t.deliveries, t.events
    return select(d, e.c.kind.label("event_kind"), e.c.model.label("event_model")).select_from(
        d.outerjoin(e, e.c.id == d.c.event_id)
    )


def get_delivery(conn: Connection, delivery_id: int) -> Delivery:
    row = conn.execute(_deliveries_with_events().where(t.deliveries.c.id == delivery_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"delivery {delivery_id} not found", field="delivery_id")
    return _delivery(row)


def list_deliveries(
    conn: Connection, webhook_id: int, limit: int = 50, status: DeliveryStatus | None = None
) -> list[Delivery]:
    """A webhook's deliveries, newest first."""
    q = _deliveries_with_events().where(t.deliveries.c.webhook_id == webhook_id)
    if status is not None:
        q = q.where(t.deliveries.c.status == status.value)
    q = q.order_by(t.deliveries.c.id.desc()).limit(limit)
    return [_delivery(r) for r in conn.execute(q).mappings()]


def claim_delivery(conn: Connection, now: datetime, lease_until: datetime) -> Delivery | None:
    """Take the most overdue pending delivery of an active webhook: its next attempt moves to
    ``lease_until`` (so no other process takes it meanwhile; if this one dies, it is due again
    then) and its attempt count goes up. PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: the
    write transaction is exclusive. The conditional UPDATE guards both."""
    d, w = t.deliveries, t.webhooks
    due = and_(d.c.status == DeliveryStatus.PENDING.value, d.c.next_attempt_at <= now)
    q = (
        select(d.c.id)
        .select_from(d.join(w, w.c.id == d.c.webhook_id))
        .where(due, w.c.active.is_(True))
        .order_by(d.c.next_attempt_at, d.c.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=d)
    )
    delivery_id = conn.execute(q).scalar()
    if delivery_id is None:
        return None
    claimed = conn.execute(
        update(d)
        .where(d.c.id == delivery_id, due)
        .values(next_attempt_at=lease_until, attempts=d.c.attempts + 1)
        .returning(d.c.id)
    ).first()
    return get_delivery(conn, delivery_id) if claimed is not None else None


def record_delivery_attempt(
    conn: Connection,
    delivery_id: int,
    *,
    status: DeliveryStatus,
    status_code: int | None,
    error: str | None,
    next_attempt_at: datetime | None,
    delivered_at: datetime | None = None,
) -> None:
    conn.execute(
        update(t.deliveries)
        .where(t.deliveries.c.id == delivery_id)
        .values(
            status=status.value,
            last_status_code=status_code,
            last_error=error,
            next_attempt_at=next_attempt_at,
            delivered_at=delivered_at,
        )
    )


def count_pending_deliveries(conn: Connection) -> int:
    q = select(func.count()).select_from(t.deliveries).where(t.deliveries.c.status == DeliveryStatus.PENDING.value)
    return int(conn.execute(q).scalar_one())


def has_due_delivery(conn: Connection, now: datetime) -> bool:
    """Whether any delivery is due (a read, so an idle worker takes no write lock)."""
    d = t.deliveries
    q = select(d.c.id).where(d.c.status == DeliveryStatus.PENDING.value, d.c.next_attempt_at <= now).limit(1)
    return conn.execute(q).first() is not None
