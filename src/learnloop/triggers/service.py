"""Every automatic retrain decision, in one place: whether a retrain starts, and queueing it.

* Polled by the worker (``check``): feedback volume (the events the model's task says can
  become training rows, ``Task.training_feedback``) and the cron schedule.
* Told what others found (``on_finding``): an online accuracy drop or a low mean rating
  (``monitoring.performance``), drift (``monitoring.service``), an erased subject
  (``privacy``). Those measure and report; they never queue a retrain themselves.

The rules are pure functions (``triggers.policy``); this reads what they need and queues what
they call for. A retrain is requested by ``trigger:<name>`` (``privacy:erasure`` after an
erasure), with the reason in its ``retrain_queued`` event.
"""

from __future__ import annotations

import logging

from learnloop.clock import Clock
from learnloop.domain import Finding, Job
from learnloop.errors import ConflictError
from learnloop.families import get_family
from learnloop.jobs.service import JobService
from learnloop.store.db import Database
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import jobs as job_repo
from learnloop.store.repositories import models as model_repo
from learnloop.store.repositories import rollouts as rollout_repo
from learnloop.tasks import get_task
from learnloop.triggers.policy import finding_retrain, retrain_reason, scheduled_reason

log = logging.getLogger(__name__)


class RetrainTriggers:
    def __init__(self, db: Database, jobs: JobService, clock: Clock) -> None:
        self.db = db
        self.jobs = jobs
        self.clock = clock

    def check(self) -> list[str]:
        """Queue a retrain for every model whose policy says so by feedback volume or schedule;
        returns their names."""
        fired = []
        now = self.clock.now()
        with self.db.read() as conn:
            # A model whose answers are made elsewhere has nothing to retrain: no trigger fires for it.
            models = [m for m in model_repo.list_models(conn) if get_family(m.family).trainable]
            training = {m.name: get_task(m.task).training_feedback(m) for m in models}
            counts = {
                m.name: feedback_repo.count_training_feedback_since(
                    conn,
                    m.name,
                    m.retrain_watermark,
                    m.policy.triggers.retrain_every,
                    training[m.name].kinds,
                    training[m.name].signals,
                )
                for m in models
            }
            active = {m.name: job_repo.active_job(conn, m.name, "retrain") is not None for m in models}
            rolling = {r.model for r in rollout_repo.active_rollouts(conn)}
        for model in models:
            busy, rolling_out = active[model.name], model.name in rolling
            volume = retrain_reason(
                model, counts[model.name], now, busy, rolling_out, counted=training[model.name].described
            )
            scheduled = scheduled_reason(model, now, busy, rolling_out)
            trigger, reason = ("feedback_volume", volume) if volume else ("schedule", scheduled)
            if reason is None:
                continue
            try:
                self.jobs.enqueue(model.name, "retrain", requested_by=f"trigger:{trigger}", reason=reason)
                fired.append(model.name)
            except ConflictError:
                pass
        return fired

    def on_finding(self, finding: Finding) -> Job | None:
        """Decide whether ``finding`` calls for a retrain of its model and queue it: the queued
        job, or None when it calls for none. ``ConflictError`` when a retrain of the model is
        already queued or running (it will read the same data)."""
        with self.db.read() as conn:
            model = model_repo.get_model(conn, finding.model)
            champion = model_repo.get_deployment(conn, finding.model).champion_version
            rolling_out = rollout_repo.active_rollout(conn, finding.model) is not None
        decided = finding_retrain(model, finding, champion, rolling_out) if get_family(model.family).trainable else None
        if decided is None:
            log.info("model %s: %s calls for no retrain", finding.model, finding.kind, extra={"model": finding.model})
            return None
        requested_by, reason = decided
        return self.jobs.enqueue(finding.model, "retrain", requested_by=requested_by, reason=reason)
