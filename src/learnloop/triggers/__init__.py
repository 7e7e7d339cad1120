"""When to retrain."""

from learnloop.triggers.policy import retrain_reason

__all__ = ["retrain_reason"]
