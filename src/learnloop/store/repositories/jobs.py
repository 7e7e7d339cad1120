"""Jobs: queued work any worker may claim.
Takes and returns domain records; table rows never leave ``store``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.engine import RowMapping

from learnloop.domain import (
    Job,
    JobStatus,
)
from learnloop.errors import NotFoundError
from learnloop.store import tables as t


def _job(row: RowMapping) -> Job:
    return Job(
        id=row["id"],
        model=row["model"],
        kind=row["kind"],
        status=JobStatus(row["status"]),
        progress=row["progress"],
        message=row["message"],
        error=row["error"],
        result=row["result"],
        requested_by=row["requested_by"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        worker=row["worker"],
    )


def active_job(conn: Connection, model: str, kind: str) -> Job | None:
    row = conn.execute(select(t.jobs).where(t.jobs.c.active_key == f"{model}:{kind}")).mappings().first()
    return _job(row) if row else None


def insert_job(conn: Connection, *, id: str, model: str, kind: str, requested_by: str, at: datetime) -> None:
    conn.execute(
        insert(t.jobs).values(
            id=id,
            model=model,
            kind=kind,
            status=JobStatus.QUEUED.value,
            active_key=f"{model}:{kind}",
            progress=0.0,
            requested_by=requested_by,
            created_at=at,
        )
    )


def get_job(conn: Connection, job_id: str) -> Job:
    row = conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"job {job_id!r} not found", field="job_id")
    return _job(row)


def list_jobs(conn: Connection, model: str | None = None, limit: int = 20) -> list[Job]:
    q = select(t.jobs).order_by(t.jobs.c.created_at.desc()).limit(limit)
    if model is not None:
        q = q.where(t.jobs.c.model == model)
    return [_job(r) for r in conn.execute(q).mappings()]


# Any constant: the advisory lock that serialises job claims on PostgreSQL.
_CLAIM_LOCK = 0x6C6C_6A6F


def claim_job(conn: Connection, worker: str, at: datetime, *, max_running: int | None = None) -> Job | None:
    """Take the oldest queued job, unless ``max_running`` jobs are running already (across every
    worker). PostgreSQL: claims are serialised by a transaction-level advisory lock (so the
    running count cannot be read by two workers at once) and the row is taken ``FOR UPDATE
    SKIP LOCKED``; SQLite: the write transaction is already exclusive (``BEGIN IMMEDIATE``)."""
    if max_running is not None:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_CLAIM_LOCK})")
        running = select(func.count()).select_from(t.jobs).where(t.jobs.c.status == JobStatus.RUNNING.value)
        if int(conn.execute(running).scalar_one()) >= max_running:
            return None
    q = (
        select(t.jobs.c.id)
        .where(t.jobs.c.status == JobStatus.QUEUED.value)
        .order_by(t.jobs.c.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    job_id = conn.execute(q).scalar()
    if job_id is None:
        return None
    conn.execute(
        update(t.jobs)
        .where(t.jobs.c.id == job_id)
        .values(status=JobStatus.RUNNING.value, started_at=at, worker=worker, message="started")
    )
    return get_job(conn, job_id)


def update_job(conn: Connection, job_id: str, **values: Any) -> None:
    if "status" in values:
        status = JobStatus(values["status"])
        values["status"] = status.value
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
            values["active_key"] = None
    conn.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(**values))


def queue_depth(conn: Connection) -> int:
    q = select(func.count()).select_from(t.jobs).where(t.jobs.c.status == JobStatus.QUEUED.value)
    return int(conn.execute(q).scalar_one())


def lock_for_model(conn: Connection, model: str) -> list[Job]:
    """``model``'s jobs, locked until the transaction ends (PostgreSQL: a worker's claim of one
    waits; SQLite: the write transaction holds the whole database already)."""
    q = select(t.jobs).where(t.jobs.c.model == model).with_for_update()
    return [_job(r) for r in conn.execute(q).mappings()]


def delete_for_model(conn: Connection, model: str) -> int:
    return conn.execute(delete(t.jobs).where(t.jobs.c.model == model)).rowcount
