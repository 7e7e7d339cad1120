"""When to retrain, decided in one place: on feedback volume and on a schedule (polled by the
worker), on an online accuracy drop and on drift (found by ``monitoring``), after an erasure
(found by ``privacy``); by hand through the API and CLI (``JobService.enqueue``)."""

from learnloop.triggers.policy import finding_retrain, retrain_reason, scheduled_reason
from learnloop.triggers.service import RetrainTriggers

__all__ = ["RetrainTriggers", "finding_retrain", "retrain_reason", "scheduled_reason"]
