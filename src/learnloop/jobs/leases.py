"""Leases: a running job is its worker's only while the worker keeps saying it is alive.

The worker that claims a job holds it until ``lease_until``; a heartbeat thread renews the
lease every few seconds while the job runs (the fit itself runs in a child process). A
worker that dies, hangs or loses the database stops renewing, and once the lease has
expired any worker on any host reclaims the job (``JobService.reclaim_expired``): queued
again for a clean attempt while the model's ``policy.retrain_retries`` last, else failed
with the reason. Every write the first worker makes afterwards is fenced by (worker id,
attempt, still running) and changes nothing, so a reclaimed attempt cannot finish or register
anything beside the new one; its progress reports raise ``LeaseLostError`` and end it. A worker
shutting down mid-job hands it back at once (``JobService.release``: the same reclaim, not
waiting for the lease), fenced the same way.

A job cancelled while it runs (``JobService.cancel``) is lost the same way: the next heartbeat
finds the job no longer running under this attempt, ``on_lost`` stops the fit, and the
progress reports raise ``JobCancelledError`` (a ``LeaseLostError``) naming who and why.

A job paused while it runs (``JobService.pause``) stays its worker's: the heartbeat goes on
renewing the lease (a paused job's lease never expires while its worker lives), finds the job
paused and calls ``on_pause`` (the runner stops the training process); finding it running
again, ``on_resume``. Progress reports go through ``proceed``, which waits (blocked, no CPU)
while the job is paused: work that cannot be stopped from outside stops there. A worker that
dies while its job is paused stops renewing like any other; the job is then reclaimed as
paused, with no worker (``JobService.reclaim_expired``), and ``resume`` queues it again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import Connection

from learnloop.clock import Clock
from learnloop.domain import Job, JobStatus
from learnloop.errors import JobCancelledError, LeaseLostError
from learnloop.store.db import Database
from learnloop.store.repositories import events as event_repo
from learnloop.store.repositories import jobs as job_repo

log = logging.getLogger(__name__)


class Lease:
    """A worker's hold on one running job, renewed on its own thread while in a ``with``
    block. ``on_lost`` runs (once, on the heartbeat thread) when another worker took it or
    someone cancelled it."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        job: Job,
        *,
        seconds: float,
        heartbeat_seconds: float,
        on_lost: Callable[[], None] | None = None,
        on_pause: Callable[[], object] | None = None,
        on_resume: Callable[[], object] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.job = job
        self.seconds = seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._on_lost = on_lost
        self._on_pause = on_pause
        self._on_resume = on_resume
        self._running = threading.Event()  # clear while the job is paused
        self._running.set()
        self._steering = threading.Lock()  # the heartbeat and a progress report may both see a change
        self._lost = threading.Event()
        self._cancelled: Job | None = None  # the job as cancelled, when that is why it was lost
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    @property
    def paused(self) -> bool:
        """Whether this attempt last found its job paused (and stopped its work)."""
        return not self._running.is_set() and not self.lost

    @property
    def cancelled(self) -> Job | None:
        """The job as someone cancelled it, when that is how this attempt lost it."""
        return self._cancelled if self.lost else None

    def renew(self, **values: Any) -> None:
        """Extend the lease (and set ``values`` on the job, e.g. progress) while this attempt
        still holds it; ``LeaseLostError`` when another worker reclaimed the job,
        ``JobCancelledError`` when it was cancelled. While the job is paused ``values`` are
        not written (the job's message says who paused it); a change between paused and
        running calls ``on_pause`` or ``on_resume``."""
        if not self.lost:
            until = self.clock.now() + timedelta(seconds=self.seconds)
            with self.db.write() as conn:
                held = job_repo.update_owned_job(conn, self.job, lease_until=until)
                status = job_repo.job_status(conn, self.job.id) if held else None
                if status == JobStatus.RUNNING and values:
                    job_repo.update_owned_job(conn, self.job, **values)
            if held and status is not None:
                self._steer(status)
            else:
                self._lose()
        if self.lost:
            raise self._lost_error()

    def proceed(self, **values: Any) -> None:
        """A progress report: ``renew`` with ``values``, then wait while the job is paused
        (blocked on an event the heartbeat sets on resume, or on loss: then it raises)."""
        self.renew(**values)
        self._running.wait()
        if self.lost:
            raise self._lost_error()

    def _steer(self, status: JobStatus) -> None:
        """Stop or continue the work when the job's status changed between running and paused."""
        with self._steering:
            if status == JobStatus.PAUSED and self._running.is_set():
                self._running.clear()
                log.info("job %s paused: stopping its work", self.job.id, extra={"job_id": self.job.id})
                if self._on_pause is not None:
                    self._on_pause()
            elif status == JobStatus.RUNNING and not self._running.is_set():
                log.info("job %s resumed: continuing its work", self.job.id, extra={"job_id": self.job.id})
                if self._on_resume is not None:
                    self._on_resume()
                self._running.set()

    def _lost_error(self) -> LeaseLostError:
        stops = f"this attempt ({self.job.attempts}) stops and writes nothing more"
        if self._cancelled is not None:
            job = self._cancelled
            return JobCancelledError(
                f"job {job.id} was cancelled by {job.cancelled_by} ({job.cancel_reason}); {stops}", field="job_id"
            )
        return LeaseLostError(
            f"job {self.job.id} was reclaimed by another worker after its lease expired; {stops}", field="job_id"
        )

    def finish(self, *, also: Callable[[Connection], object] | None = None, **values: Any) -> bool:
        """Stop the heartbeat and write the job's final state (and ``also``, in the same
        transaction) unless the lease was lost; True when written."""
        self._stop_beating()
        if self.lost:
            return False
        with self.db.write() as conn:
            written = job_repo.update_owned_job(conn, self.job, **values)
            if written and also is not None:
                also(conn)
        if not written:
            self._lose()
        return written

    def hand_back(self, write: Callable[[Connection], object]) -> bool:
        """Stop the heartbeat and, while this attempt still holds the job (checked in the same
        transaction), let ``write`` give it up; True when it did."""
        self._stop_beating()
        if self.lost:
            return False
        with self.db.write() as conn:
            held = job_repo.holds(conn, self.job)
            if held:
                write(conn)
        if not held:
            self._lose()
        return held

    def fail(self, error: str, *, actor: str) -> bool:
        """Finish the job as failed with ``error`` and write its ``<kind>_failed`` event, in one
        transaction, unless the lease was lost; True when written."""
        job = self.job
        return self.finish(
            status=JobStatus.FAILED,
            finished_at=self.clock.now(),
            error=error,
            message="failed",
            also=lambda conn: event_repo.insert_event(
                conn,
                model=job.model,
                kind=f"{job.kind}_failed",
                at=self.clock.now(),
                actor=actor,
                reason=error,
                data={"job_id": job.id, "attempts": job.attempts},
            ),
        )

    def _lose(self) -> None:
        if self._lost.is_set():
            return
        self._cancelled = self._as_cancelled()
        self._lost.set()
        self._running.set()  # a report waiting while paused wakes, and raises
        extra = {"job_id": self.job.id, "model": self.job.model}
        if self._cancelled is not None:
            log.info("job %s (attempt %d) was cancelled: stopping it", self.job.id, self.job.attempts, extra=extra)
        else:
            log.warning(
                "lost the lease on job %s (attempt %d): another worker reclaimed it",
                self.job.id,
                self.job.attempts,
                extra=extra,
            )
        if self._on_lost is not None:
            self._on_lost()

    def _as_cancelled(self) -> Job | None:
        """The job now, if it was cancelled (else another worker reclaimed it)."""
        try:
            with self.db.read() as conn:
                now = job_repo.get_job(conn, self.job.id)
        except Exception:  # gone or unreadable: what matters is that this attempt stops
            log.warning("could not read job %s after losing it", self.job.id, exc_info=True)
            return None
        return now if now.status == JobStatus.CANCELLED else None

    def _beat(self) -> None:
        while not self._done.wait(self.heartbeat_seconds):
            try:
                self.renew()
            except LeaseLostError:
                return
            except Exception:  # the database may be back by the next beat; the lease has slack
                log.warning("could not renew the lease on job %s", self.job.id, exc_info=True)

    def __enter__(self) -> Lease:
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.job.id[:8]}", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop_beating()

    def _stop_beating(self) -> None:
        self._done.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
            self._thread = None
