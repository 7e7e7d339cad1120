"""When to retrain: on feedback volume and on a schedule here; on an accuracy drop
(``monitoring.performance``) and on drift (``monitoring`` drift checks); by hand (API, CLI)."""

from learnloop.triggers.policy import check_schedule, retrain_reason, scheduled_reason

__all__ = ["check_schedule", "retrain_reason", "scheduled_reason"]
