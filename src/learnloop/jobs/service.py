"""Jobs: queued work (retrains) that any worker process may claim."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError

from learnloop.clock import Clock
from learnloop.domain import Job
from learnloop.errors import ConflictError
from learnloop.ids import new_id
from learnloop.store.db import Database
from learnloop.store.repositories import events as event_repo
from learnloop.store.repositories import jobs as job_repo
from learnloop.store.repositories import models as model_repo

log = logging.getLogger(__name__)


class JobService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def enqueue(self, model: str, kind: str, *, requested_by: str, reason: str | None = None) -> Job:
        """Queue a job; a job of the same kind already queued or running for the model is a
        ``ConflictError`` naming it (never two retrains of one model at once)."""
        job_id = new_id()
        now = self.clock.now()
        try:
            with self.db.write() as conn:
                model_repo.get_model(conn, model)
                active = job_repo.active_job(conn, model, kind)
                if active is not None:
                    raise ConflictError(
                        f"a {kind} of model {model!r} is already {active.status.value} (job {active.id})",
                        field="job_id",
                    )
                job_repo.insert_job(conn, id=job_id, model=model, kind=kind, requested_by=requested_by, at=now)
                event_repo.insert_event(
                    conn,
                    model=model,
                    kind=f"{kind}_queued",
                    at=now,
                    actor=requested_by,
                    reason=reason,
                    data={"job_id": job_id},
                )
        except IntegrityError as exc:  # lost a race with another process: the constraint decides
            raise ConflictError(f"a {kind} of model {model!r} is already queued or running", field="job_id") from exc
        log.info("queued %s job %s for model %s (%s)", kind, job_id, model, reason or requested_by)
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        with self.db.read() as conn:
            return job_repo.get_job(conn, job_id)

    def list(self, model: str | None = None, limit: int = 20) -> list[Job]:
        with self.db.read() as conn:
            return job_repo.list_jobs(conn, model, limit)

    def active(self, model: str, kind: str) -> Job | None:
        with self.db.read() as conn:
            return job_repo.active_job(conn, model, kind)

    def queue_depth(self) -> int:
        with self.db.read() as conn:
            return job_repo.queue_depth(conn)
