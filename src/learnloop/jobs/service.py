"""Jobs: queued work (retrains) that any worker process may claim."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from learnloop.clock import Clock
from learnloop.domain import Job, JobStatus
from learnloop.errors import ConflictError, NotFoundError, NotSupportedError, ValidationError
from learnloop.families import get_family
from learnloop.ids import MIN_SUFFIX, new_id
from learnloop.jobs.leases import Lease
from learnloop.store.db import Database
from learnloop.store.repositories import events as event_repo
from learnloop.store.repositories import jobs as job_repo
from learnloop.store.repositories import models as model_repo

log = logging.getLogger(__name__)


class JobService:
    def __init__(self, db: Database, clock: Clock, *, running_pause_refusal: str | None = None) -> None:
        self.db = db
        self.clock = clock
        # Why a running job cannot be paused here (its fit runs where nothing can stop it: a
        # Ray task); None: it can. A queued job can always be paused.
        self.running_pause_refusal = running_pause_refusal

    def enqueue(self, model: str, kind: str, *, requested_by: str, reason: str | None = None) -> Job:
        """Queue a job; a job of the same kind already queued or running for the model is a
        ``ConflictError`` naming it (never two retrains of one model at once)."""
        job_id = new_id()
        now = self.clock.now()
        try:
            with self.db.write() as conn:
                found = model_repo.get_model(conn, model)
                if kind == "retrain" and not get_family(found.family).trainable:
                    raise NotSupportedError(
                        f"model {model!r} answers elsewhere ({found.family}): learnloop cannot fit its weights; "
                        "export its training data (learnloop export --format trl-dpo, openai-chat, ...) to fine-tune "
                        "it where it runs",
                        field="model",
                    )
                for stale in job_repo.expired_jobs(conn, now, model=model, kind=kind):
                    _reclaim(conn, stale, now, actor=requested_by)  # a dead worker's job holds no slot
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

    def claim(self, worker: str, *, lease_seconds: float, max_running: int | None = None) -> Job | None:
        """The oldest queued job, now running under ``worker``'s lease of ``lease_seconds`` (none
        while ``max_running`` jobs run across every worker); None when there is none to run."""
        with self.db.write() as conn:
            return job_repo.claim_job(
                conn, worker, self.clock.now(), lease_seconds=lease_seconds, max_running=max_running
            )

    def lease(
        self,
        job: Job,
        *,
        seconds: float,
        heartbeat_seconds: float,
        on_lost: Callable[[], None] | None = None,
        on_pause: Callable[[], object] | None = None,
        on_resume: Callable[[], object] | None = None,
    ) -> Lease:
        """The claimed ``job``'s lease, renewed every ``heartbeat_seconds`` inside a ``with``."""
        return Lease(
            self.db,
            self.clock,
            job,
            seconds=seconds,
            heartbeat_seconds=heartbeat_seconds,
            on_lost=on_lost,
            on_pause=on_pause,
            on_resume=on_resume,
        )

    def pause(self, job_id: str, *, actor: str, reason: str) -> Job:
        """Pause a queued or running job (by its id or a unique end of it): ``paused`` in the
        database at once, with a ``<kind>_paused`` event naming who and why. A running job keeps
        its worker, its lease and its model's slot; its worker stops the fit where it is at its
        next heartbeat (the training process is stopped: it keeps its memory and uses no CPU).
        A queued job is not claimed until resumed. ``ConflictError`` naming the status unless
        queued or running; ``NotFoundError``."""
        job_id = self.find(job_id).id
        now = self.clock.now()
        with self.db.write() as conn:
            job = job_repo.get_job(conn, job_id, for_update=True)
            if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
                raise ConflictError(
                    f"job {job_id} is {job.status.value}; only a queued or running job can be paused",
                    field="job_id",
                )
            if job.status == JobStatus.RUNNING and self.running_pause_refusal is not None:
                raise NotSupportedError(
                    f"job {job_id} cannot be paused while it runs: {self.running_pause_refusal}", field="job_id"
                )
            where = "its fit stops where it is" if job.status == JobStatus.RUNNING else "it waits in the queue"
            job_repo.update_job(conn, job.id, status=JobStatus.PAUSED, message=f"paused by {actor}: {reason}; {where}")
            _control_event(conn, job, "paused", now, actor=actor, reason=reason)
        extra = {"job_id": job.id, "model": job.model}
        log.info("job %s paused while %s by %s: %s", job.id, job.status.value, actor, reason, extra=extra)
        return self.get(job_id)

    def resume(self, job_id: str, *, actor: str, reason: str) -> Job:
        """Resume a paused job, saying in its message and ``<kind>_resumed`` event how it goes on:
        held by a live worker, ``running`` again and its fit continues exactly where it stopped
        (the stopped process kept all its state, for every family); held by none (paused while
        queued, or its worker died while it was paused), ``queued`` again, and an attempt that had
        begun starts from scratch. ``ConflictError`` unless paused; ``NotFoundError``."""
        job_id = self.find(job_id).id
        now = self.clock.now()
        with self.db.write() as conn:
            job = job_repo.get_job(conn, job_id, for_update=True)
            if job.status != JobStatus.PAUSED:
                raise ConflictError(
                    f"job {job_id} is {job.status.value}; only a paused job can be resumed", field="job_id"
                )
            if job.worker is not None and job.lease_until is not None and job.lease_until <= now:
                _reclaim(conn, job, now, actor=actor)  # its worker died: no fit is left to continue
                job = job_repo.get_job(conn, job_id)
                if job.status != JobStatus.PAUSED:
                    return job  # failed: its retries are spent (the event says so)
            status, how = _resumption(conn, job)
            job_repo.update_job(conn, job.id, status=status, message=f"resumed by {actor}: {how}")
            _control_event(conn, job, "resumed", now, actor=actor, reason=reason, how=how)
        log.info("job %s resumed by %s: %s", job.id, actor, how, extra={"job_id": job.id, "model": job.model})
        return self.get(job_id)

    def cancel(self, job_id: str, *, actor: str, reason: str) -> Job:
        """Cancel a queued, running or paused job (by its id or a unique end of it, as ``find`` takes
        them): ``cancelled`` in the database at once, with who and why, a ``<kind>_cancelled``
        event, and its model's slot free for the next request. The worker running it no longer
        holds it: its next heartbeat finds that out and stops the fit, and its writes are fenced
        (nothing is registered, its status stays cancelled); a paused fit is continued only to
        be ended.
        ``ConflictError`` naming the status when the job has finished; ``NotFoundError``."""
        job_id = self.find(job_id).id
        now = self.clock.now()
        with self.db.write() as conn:
            job = job_repo.get_job(conn, job_id, for_update=True)
            if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED):
                raise ConflictError(
                    f"job {job_id} is {job.status.value} already; only a queued, running or paused job can be "
                    "cancelled",
                    field="job_id",
                )
            job_repo.update_job(
                conn,
                job.id,
                status=JobStatus.CANCELLED,
                finished_at=now,
                cancelled_by=actor,
                cancel_reason=reason,
                message=f"cancelled while {job.status.value}",
            )
            _control_event(conn, job, "cancelled", now, actor=actor, reason=reason)
        log.info(
            "job %s (%s of %s) cancelled while %s by %s: %s",
            job.id,
            job.kind,
            job.model,
            job.status.value,
            actor,
            reason,
            extra={"job_id": job.id, "model": job.model},
        )
        return self.get(job_id)

    def reclaim_expired(self, actor: str) -> list[Job]:
        """Take back every running job whose lease expired (its worker died, hung or lost
        the database): queued again for a clean attempt while the retries last, else failed
        with the reason. Returns the reclaimed jobs as they are now."""
        now = self.clock.now()
        with self.db.write() as conn:
            ids = [_reclaim(conn, job, now, actor=actor) for job in job_repo.expired_jobs(conn, now)]
            return [job_repo.get_job(conn, job_id) for job_id in ids]

    def release(self, lease: Lease, why: str, *, actor: str) -> Job | None:
        """Hand a running job back at once, as a reclaim would once its lease expired (its
        worker is shutting down): queued again for a fresh attempt while the retries last,
        else failed. The job as it is now; None when this attempt no longer held it."""
        job = lease.job
        if not lease.hand_back(lambda conn: _reclaim(conn, job, self.clock.now(), actor=actor, why=why)):
            return None
        return self.get(job.id)

    def get(self, job_id: str) -> Job:
        with self.db.read() as conn:
            return job_repo.get_job(conn, job_id)

    def find(self, id_or_suffix: str) -> Job:
        """A job by its id, or by a unique end of it (``short_id`` shows one): UUIDv7 ids share
        their start (the time), so a person names a job by its end. ``NotFoundError`` when
        none matches or the text cannot be an id's end (too short, not hexadecimal);
        ``ValidationError`` when several jobs share it."""
        given = id_or_suffix.strip().lower()
        if len(given) < MIN_SUFFIX or not set(given) <= set("0123456789abcdef-"):
            raise NotFoundError(
                f"{id_or_suffix!r} is not a job id: give the id or its last {MIN_SUFFIX} or more characters "
                "(learnloop jobs list)",
                field="job_id",
            )
        with self.db.read() as conn:
            found = job_repo.jobs_ending_with(conn, given, limit=5)
        if not found:
            raise NotFoundError(f"no job id ends with {given!r}", field="job_id")
        exact = [job for job in found if job.id == given]
        if len(found) > 1 and not exact:
            raise ValidationError(
                f"{len(found)}{'+' if len(found) == 5 else ''} jobs end with {given!r} "
                f"({', '.join(job.id for job in found)}); give more of the id",
                field="job_id",
            )
        return (exact or found)[0]

    def list(self, model: str | None = None, limit: int = 20) -> list[Job]:
        with self.db.read() as conn:
            return job_repo.list_jobs(conn, model, limit)

    def active(self, model: str, kind: str) -> Job | None:
        with self.db.read() as conn:
            return job_repo.active_job(conn, model, kind)

    def queue_depth(self) -> int:
        with self.db.read() as conn:
            return job_repo.queue_depth(conn)


def _retries(conn: Connection, job: Job) -> int:
    if job.kind != "retrain":
        return 0
    try:
        return model_repo.get_model(conn, job.model).policy.triggers.retrain_retries
    except NotFoundError:
        return 0


def _control_event(
    conn: Connection, job: Job, action: str, now: datetime, *, actor: str, reason: str, **data: object
) -> None:
    """The audit event of a person's pause, resume or cancel of ``job`` (as it was before)."""
    event_repo.insert_event(
        conn,
        model=job.model,
        kind=f"{job.kind}_{action}",
        at=now,
        actor=actor,
        reason=reason,
        data={"job_id": job.id, "was": job.status.value, "worker": job.worker, "attempts": job.attempts, **data},
    )


def _resumption(conn: Connection, job: Job) -> tuple[JobStatus, str]:
    """How a paused job goes on: its status once resumed, and the words that say so."""
    if job.worker is not None:
        return JobStatus.RUNNING, "its fit continues where it stopped (its training process was stopped, not ended)"
    if job.attempts == 0:
        return JobStatus.QUEUED, "queued; it had not started"
    how = f"queued again; its worker stopped while it was paused, so attempt {job.attempts + 1} restarts from scratch"
    if job.kind == "retrain" and _searched(conn, job.model):
        how += " (its candidate search keeps the trials its study finished, when the data is unchanged)"
    return JobStatus.QUEUED, how


def _searched(conn: Connection, model: str) -> bool:
    try:
        return bool(model_repo.get_model(conn, model).policy.selection.searched)
    except NotFoundError:
        return False


def _reclaim(conn: Connection, job: Job, now: datetime, *, actor: str, why: str | None = None) -> str:
    """Queue a job its worker no longer runs (its lease expired, or ``why``) again (a fresh
    attempt; its slot stays held) or fail it when its retries are spent; an event says which
    and why. A paused job stays paused, with no worker: someone paused it to free the machine,
    so it waits for ``resume`` to queue it. Returns the job's id."""
    retries = _retries(conn, job)
    expired = job.lease_until.strftime("%Y-%m-%d %H:%M:%S UTC") if job.lease_until else "before leases"
    paused = job.status == JobStatus.PAUSED
    why = why or f"worker {job.worker} stopped renewing its lease (expired {expired}) during attempt {job.attempts}"
    why += " while the job was paused" if paused else ""
    if job.attempts <= retries:
        then = "starts from scratch" if not paused else "starts from scratch once resumed; the job stays paused"
        reason = f"{why}; attempt {job.attempts + 1} of {retries + 1} {then}"
        job_repo.update_owned_job(
            conn,
            job,
            status=JobStatus.PAUSED if paused else JobStatus.QUEUED,
            worker=None,
            lease_until=None,
            progress=0.0,
            last_error=why,
            message="paused; its worker stopped: resume queues it again"
            if paused
            else "queued again: its worker stopped",
        )
        kind = f"{job.kind}_reclaimed"
    else:
        reason = f"{why}; failed after {job.attempts} attempt(s) (policy.retrain_retries is {retries})"
        job_repo.update_owned_job(
            conn, job, status=JobStatus.FAILED, finished_at=now, error=reason, last_error=why, message="failed"
        )
        kind = f"{job.kind}_failed"
    event_repo.insert_event(
        conn,
        model=job.model,
        kind=kind,
        at=now,
        actor=actor,
        reason=reason,
        data={"job_id": job.id, "attempts": job.attempts, "worker": job.worker},
    )
    log.warning("job %s reclaimed: %s", job.id, reason, extra={"job_id": job.id, "model": job.model})
    return job.id
