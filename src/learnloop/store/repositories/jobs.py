"""Jobs: queued work any worker may claim.
Takes and returns domain records; table rows never leave ``store``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
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
        lease_until=row["lease_until"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        cancelled_by=row["cancelled_by"],
        cancel_reason=row["cancel_reason"],
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


def get_job(conn: Connection, job_id: str, *, for_update: bool = False) -> Job:
    """The job; with ``for_update`` its row stays locked until the transaction ends."""
    q = select(t.jobs).where(t.jobs.c.id == job_id)
    if for_update:
        q = q.with_for_update()
    row = conn.execute(q).mappings().first()
    if row is None:
        raise NotFoundError(f"job {job_id!r} not found", field="job_id")
    return _job(row)


def jobs_ending_with(conn: Connection, suffix: str, limit: int) -> list[Job]:
    """Jobs whose id ends with ``suffix`` (hexadecimal digits and dashes only: nothing a LIKE
    pattern reads as a wildcard), at most ``limit``."""
    if not set(suffix) <= set("0123456789abcdef-"):
        raise ValueError(f"not a job id suffix: {suffix!r}")
    q = select(t.jobs).where(t.jobs.c.id.like(f"%{suffix}")).order_by(t.jobs.c.created_at.desc()).limit(limit)
    return [_job(r) for r in conn.execute(q).mappings()]


def list_jobs(conn: Connection, model: str | None = None, limit: int = 20) -> list[Job]:
    q = select(t.jobs).order_by(t.jobs.c.created_at.desc()).limit(limit)
    if model is not None:
        q = q.where(t.jobs.c.model == model)
    return [_job(r) for r in conn.execute(q).mappings()]


# A claimed job still held by its worker: running, or paused with its fit stopped.
HELD = (JobStatus.RUNNING.value, JobStatus.PAUSED.value)

# Any constant: the advisory lock that serialises job claims on PostgreSQL.
_CLAIM_LOCK = 0x6C6C_6A6F


def _held(at: datetime) -> Any:
    """Running (or paused: its fit keeps its memory and its worker) under a lease that has not
    expired at ``at``."""
    return and_(t.jobs.c.status.in_(HELD), t.jobs.c.lease_until > at)


def claim_job(
    conn: Connection,
    worker: str,
    at: datetime,
    *,
    lease_seconds: float,
    max_running: int | None = None,
) -> Job | None:
    """Take the oldest queued job under a lease of ``lease_seconds``, unless ``max_running``
    jobs hold a live lease already (across every worker; a job whose lease expired does not
    count). PostgreSQL: claims are serialised by a transaction-level advisory lock (so the
    running count cannot be read by two workers at once) and the row is taken ``FOR UPDATE
    SKIP LOCKED``; SQLite: the write transaction is already exclusive (``BEGIN IMMEDIATE``)."""
    if max_running is not None:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_CLAIM_LOCK})")
        running = select(func.count()).select_from(t.jobs).where(_held(at))
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
        .values(
            status=JobStatus.RUNNING.value,
            started_at=at,
            worker=worker,
            lease_until=at + timedelta(seconds=lease_seconds),
            attempts=t.jobs.c.attempts + 1,
            progress=0.0,
            message="started",
        )
    )
    return get_job(conn, job_id)


def update_owned_job(conn: Connection, job: Job, **values: Any) -> bool:
    """``update_job`` only while ``job``'s attempt still holds it (same worker, same attempt,
    still running or paused): False when another worker reclaimed it meanwhile or it was
    cancelled, and nothing changed."""
    return update_job(conn, job.id, where=_owned(job), **values)


def _owned(job: Job) -> Any:
    """``job``'s row while its attempt holds it: same worker, same attempt, running or paused."""
    return and_(
        t.jobs.c.id == job.id,
        t.jobs.c.status.in_(HELD),
        t.jobs.c.worker == job.worker,
        t.jobs.c.attempts == job.attempts,
    )


def holds(conn: Connection, job: Job) -> bool:
    """Whether ``job``'s attempt still holds it (same worker and attempt, running or paused),
    its row locked for the rest of the transaction on PostgreSQL."""
    return conn.execute(select(t.jobs.c.id).where(_owned(job)).with_for_update()).first() is not None


def expired_jobs(conn: Connection, at: datetime, *, model: str | None = None, kind: str | None = None) -> list[Job]:
    """Running or paused jobs whose lease expired at ``at`` (locked for this transaction,
    skipping rows another worker is reclaiming on PostgreSQL). A paused job that no worker
    holds has no lease: it waits for ``resume``, never expires."""
    q = (
        select(t.jobs)
        .where(t.jobs.c.status.in_(HELD), t.jobs.c.lease_until <= at)
        .order_by(t.jobs.c.created_at)
        .with_for_update(skip_locked=True)
    )
    if model is not None:
        q = q.where(t.jobs.c.model == model)
    if kind is not None:
        q = q.where(t.jobs.c.kind == kind)
    return [_job(r) for r in conn.execute(q).mappings()]


def job_status(conn: Connection, job_id: str) -> JobStatus | None:
    """The job's status now (None when it is gone)."""
    found = conn.execute(select(t.jobs.c.status).where(t.jobs.c.id == job_id)).scalar()
    return None if found is None else JobStatus(found)


def update_job(conn: Connection, job_id: str, *, where: Any = None, **values: Any) -> bool:
    """Set ``values`` on the job (a final status frees its model's slot); ``where`` narrows
    the update. True when a row changed."""
    if "status" in values:
        status = JobStatus(values["status"])
        values["status"] = status.value
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
            values["active_key"] = None
            values["lease_until"] = None
    q = update(t.jobs).where(t.jobs.c.id == job_id if where is None else where).values(**values)
    return bool(conn.execute(q).rowcount)


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
