"""Retrain triggers as pure decisions (the worker feeds them counts and the time)."""

from __future__ import annotations

from datetime import datetime

from learnloop.domain import Model


def retrain_reason(
    model: Model, new_labels: int, now: datetime, job_active: bool, rollout_active: bool = False
) -> str | None:
    """Why a retrain should start now, or None.

    Fires when ``policy.retrain_every`` labelled feedback events arrived since the last
    snapshot, no retrain of the model is queued or running, no rollout is on live traffic (a
    new candidate would cut the running experiment short; the feedback keeps counting and
    fires the retrain once the rollout ends), and the cooldown has passed.
    """
    policy = model.policy
    if job_active or rollout_active or new_labels < policy.retrain_every:
        return None
    if model.last_retrain_at is not None:
        elapsed = (now - model.last_retrain_at).total_seconds()
        if elapsed < policy.cooldown_seconds:
            return None
    return f"{new_labels} new labelled feedback events (policy: retrain every {policy.retrain_every})"
