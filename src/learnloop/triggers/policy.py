"""Retrain triggers as pure decisions: ``RetrainTriggers`` feeds them what it read (counts,
the time, the champion, whether a rollout runs) and queues what they call for."""

from __future__ import annotations

from datetime import datetime

from croniter import croniter

from learnloop.domain import Finding, Model


def scheduled_reason(model: Model, now: datetime, job_active: bool, rollout_active: bool = False) -> str | None:
    """Why a scheduled retrain is due now, or None: the policy's ``retrain_schedule`` has a
    firing time after the last retrain (or the model's creation) that is not in the future."""
    expression = model.policy.triggers.retrain_schedule
    if not expression or job_active or rollout_active:
        return None
    since = model.last_retrain_at or model.created_at
    due = croniter(expression, since).get_next(datetime)
    if due > now:
        return None
    return f"scheduled retrain (cron {expression!r} UTC, due {due:%Y-%m-%d %H:%M})"


def retrain_reason(
    model: Model,
    new_events: int,
    now: datetime,
    job_active: bool,
    rollout_active: bool = False,
    *,
    counted: str = "labelled feedback events",
) -> str | None:
    """Why a retrain should start now, or None.

    Fires when ``policy.retrain_every`` new training events (``counted``: what the model's task
    counts, ``Task.training_feedback``) arrived since the last snapshot, no retrain of the
    model is queued or running, no rollout is on live traffic (a new candidate would cut the
    running experiment short; the feedback keeps counting and fires the retrain once the
    rollout ends), and the cooldown has passed.
    """
    policy = model.policy
    if job_active or rollout_active or new_events < policy.triggers.retrain_every:
        return None
    if model.last_retrain_at is not None:
        elapsed = (now - model.last_retrain_at).total_seconds()
        if elapsed < policy.triggers.cooldown_seconds:
            return None
    return f"{new_events} new {counted} (policy: retrain every {policy.triggers.retrain_every})"


def finding_retrain(
    model: Model, finding: Finding, champion: int | None, rollout_active: bool
) -> tuple[str, str] | None:
    """Who requests a retrain for what monitoring or privacy found, and why; or None.

    * an online accuracy drop: when ``policy.retrain_on_accuracy_drop``;
    * a mean rating shown below ``policy.min_mean_rating`` (the alarm is on only when that is
      set) and no rollout is on live traffic (as for drift);
    * drift: when ``policy.retrain_on_drift`` and no rollout is on live traffic (a new candidate
      would cut the running experiment short);
    * an erasure: when the champion was trained on the erased subject's data, so the next
      version learns without it (whatever the policy: erasure is not optional).
    """
    triggers = model.policy.triggers
    if finding.kind == "accuracy_drop" and triggers.retrain_on_accuracy_drop:
        return "trigger:accuracy_drop", finding.reason
    if finding.kind == "rating_drop" and triggers.min_mean_rating > 0 and not rollout_active:
        return "trigger:rating_drop", finding.reason
    if finding.kind == "drift" and triggers.retrain_on_drift and not rollout_active:
        return "trigger:drift", finding.reason
    if finding.kind == "erasure" and champion is not None and champion in finding.versions:
        return "privacy:erasure", finding.reason
    return None
