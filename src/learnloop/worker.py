"""The worker: claims queued jobs and runs them; checks retrain triggers.

Runs as a thread inside ``learnloop serve`` (embedded default) or as its own process
(``learnloop worker``) beside many API replicas; jobs are claimed through the database, so
any number of workers share one queue. A claimed job is held under a lease that a heartbeat
renews; every worker reclaims, in its loop, the jobs whose lease expired (``jobs.leases``).

The worker sits at the top, beside the composition root: it drives training, rollouts and
triggers, and the queue it claims from (``learnloop.jobs``) lies below all of them.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from learnloop.clock import Clock
from learnloop.domain import Job, JobStatus
from learnloop.errors import LearnloopError, LeaseLostError
from learnloop.jobs.leases import Lease
from learnloop.jobs.service import JobService
from learnloop.retention import RetentionService
from learnloop.rollout.service import RolloutService
from learnloop.telemetry import Metrics
from learnloop.training.pipeline import TrainingService
from learnloop.triggers import RetrainTriggers

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        jobs: JobService,
        training: TrainingService,
        triggers: RetrainTriggers,
        clock: Clock,
        metrics: Metrics,
        rollouts: RolloutService | None = None,
        retention: RetentionService | None = None,
        *,
        poll_seconds: float = 0.5,
        trigger_poll_seconds: float = 2.0,
        max_running_jobs: int | None = None,
        lease_seconds: float = 30.0,
        heartbeat_seconds: float = 5.0,
    ) -> None:
        self.jobs = jobs
        self.training = training
        self.triggers = triggers
        self.clock = clock
        self.metrics = metrics
        self.rollouts = rollouts
        self.retention = retention  # applied to a model after each of its retrains
        self.max_running_jobs = max_running_jobs  # across every worker sharing the database
        # Identity: a random id per process (host and pid repeat across containers and
        # restarts); "@host:pid" after it is only for people reading job listings.
        self.name = f"{secrets.token_hex(8)}@{socket.gethostname()}:{os.getpid()}"
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._poll = poll_seconds
        self._trigger_poll = trigger_poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handlers: dict[str, Callable[[Job, Lease], dict[str, Any]]] = {"retrain": self._run_retrain}
        # Periodic work beside jobs (drift checks, notification deliveries): name -> (every, fn).
        self._periodic: dict[str, tuple[float, Callable[[], object]]] = {}
        self._last_run: dict[str, float] = {}
        self.every("reclaim", heartbeat_seconds, self.reclaim)

    def every(self, name: str, seconds: float, fn: Callable[[], object]) -> None:
        """Run ``fn`` about every ``seconds`` in the worker loop (errors are logged, never fatal)."""
        self._periodic[name] = (seconds, fn)

    def run_periodic(self, *, force: bool = False) -> None:
        """Run the periodic work that is due (all of it with ``force``: replays and tests)."""
        for name, (seconds, fn) in self._periodic.items():
            if not force and time.monotonic() - self._last_run.get(name, -1e18) < seconds:
                continue
            self._last_run[name] = time.monotonic()
            try:
                fn()
            except Exception:
                log.exception("periodic work %s failed", name)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="learnloop-worker", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Take no new job; the running one ends when its training process is stopped."""
        self._stop.set()

    def stop(self, timeout: float = 60.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def reclaim(self) -> list[Job]:
        """Take back the jobs whose lease expired, whichever worker or host held them."""
        reclaimed = self.jobs.reclaim_expired(actor=self.name)
        for job in reclaimed:
            if job.status == JobStatus.FAILED and job.kind == "retrain":
                self.metrics.retrains.labels(job.model, "failed").inc()
        return reclaimed

    def run_forever(self) -> None:
        last_trigger_check = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() - last_trigger_check >= self._trigger_poll:
                    last_trigger_check = time.monotonic()
                    self.check_rollouts()
                    self.check_triggers()
                self.run_periodic()
                if not self.run_once():
                    self._stop.wait(self._poll)
            except Exception:
                log.exception("worker loop error")
                self._stop.wait(1.0)

    def check_rollouts(self) -> None:
        """Look at every running rollout and act on what its live evidence shows."""
        if self.rollouts is not None:
            self.rollouts.look_all()

    def check_triggers(self) -> list[str]:
        """Let the triggers queue the retrains that feedback volume or a schedule call for;
        returns the models they fired for."""
        return self.triggers.check()

    def run_once(self) -> bool:
        """Claim and run one job under a lease; False when the queue was empty."""
        job = self.jobs.claim(self.name, lease_seconds=self.lease_seconds, max_running=self.max_running_jobs)
        if job is None:
            return False
        log.info(
            "job %s (%s of %s) started, attempt %d",
            job.id,
            job.kind,
            job.model,
            job.attempts,
            extra={"job_id": job.id, "model": job.model},
        )
        handler = self._handlers.get(job.kind)
        lease = self.jobs.lease(
            job,
            seconds=self.lease_seconds,
            heartbeat_seconds=self.heartbeat_seconds,
            on_lost=self.training.runner.close,  # reclaimed elsewhere or cancelled: stop the fit now
            on_pause=lambda: self._pause(job),  # paused: the fit stops where it is, using no CPU
            on_resume=self.training.runner.resume,
        )
        with lease:
            try:
                if handler is None:
                    raise LearnloopError(f"no handler for job kind {job.kind!r}")
                result = handler(job, lease)
            except Exception as exc:
                self._failed(job, lease, exc)
            else:
                if not lease.finish(
                    status=JobStatus.SUCCEEDED,
                    finished_at=self.clock.now(),
                    progress=1.0,
                    result=result,
                    message=str(result.get("summary") or "done"),
                ):
                    self._lost(job, lease, f"finished all the same; its result is not recorded on the job: {result}")
        return True

    def _pause(self, job: Job) -> None:
        """Stop the fit of a job someone paused; where it runs cannot be stopped (a Ray task,
        paused by a process that did not refuse it), run the job again at once, saying why."""
        if self.training.runner.suspend() or self.jobs.running_pause_refusal is None:
            return
        refusal = self.jobs.running_pause_refusal
        log.warning("job %s cannot be paused: %s", job.id, refusal, extra={"job_id": job.id, "model": job.model})
        try:
            self.jobs.resume(job.id, actor=self.name, reason=f"pause refused: {refusal}")
        except LearnloopError:  # cancelled or finished meanwhile: nothing to undo
            log.info("job %s changed before its pause could be refused", job.id, exc_info=True)

    def _lost(self, job: Job, lease: Lease, how: str) -> None:
        """Say how the job ended here once this attempt no longer held it (it writes nothing)."""
        extra = {"job_id": job.id, "model": job.model}
        cancelled = lease.cancelled
        if cancelled is not None:
            log.info(
                "job %s cancelled by %s (%s): %s",
                job.id,
                cancelled.cancelled_by,
                cancelled.cancel_reason,
                how,
                extra=extra,
            )
        else:
            log.warning("job %s reclaimed by another worker: %s", job.id, how, extra=extra)

    def _failed(self, job: Job, lease: Lease, exc: Exception) -> None:
        if isinstance(exc, LeaseLostError) or lease.lost:
            self._lost(job, lease, f"stopped ({type(exc).__name__}: {exc})")
            return
        message = exc.message if isinstance(exc, LearnloopError) else f"{type(exc).__name__}: {exc}"
        if self._stop.is_set():  # shut down mid-job: handed back at once, as a reclaim would
            # what the fit raised is the shutdown's doing (its training process ended): logged, not told
            log.info("job %s stopped by the shutdown: %s", job.id, message, extra={"job_id": job.id})
            why = f"worker {self.name} was shut down during attempt {job.attempts}"
            now = self.jobs.release(lease, why, actor=self.name)
            if now is not None and now.status == JobStatus.FAILED:
                self.metrics.retrains.labels(job.model, "failed").inc()
            return
        if not isinstance(exc, LearnloopError):
            log.error("job %s failed:\n%s", job.id, traceback.format_exc())
        if not lease.fail(message, actor=self.name):
            return
        self.metrics.retrains.labels(job.model, "failed").inc()
        log.warning("job %s failed: %s", job.id, message)

    def _run_retrain(self, job: Job, lease: Lease) -> dict[str, Any]:
        def progress(fraction: float, message: str) -> None:
            # Raises once another worker took the job or it was cancelled; waits while it is paused.
            lease.proceed(progress=fraction, message=message)

        actor = f"job:{job.id}"
        if job.attempts > 1:  # an earlier attempt died: nothing it registered stays half-done
            self.training.registry.fail_stranded_candidates(
                job.model,
                registered_by=actor,
                reason=f"registered by an attempt of job {job.id} that died before rolling it out; "
                f"attempt {job.attempts} retrains from scratch",
            )
        outcome = self.training.retrain(job.model, actor=actor, progress=progress)
        result = "promoted" if outcome.promoted else "rollout" if outcome.rollout is not None else "rejected"
        self.metrics.retrains.labels(job.model, result).inc()
        if self.retention is not None:
            try:  # the retrain's outcome stands whatever retention meets
                self.retention.apply(job.model, actor=actor)
            except Exception:
                log.exception("retention of model %s after job %s failed", job.model, job.id)
        return outcome.to_dict()
