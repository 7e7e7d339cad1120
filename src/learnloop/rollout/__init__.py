"""Online rollouts: canary, shadow and A/B tests decided by live feedback."""

from learnloop.rollout.decide import Decision, decide
from learnloop.rollout.service import RolloutService

__all__ = ["Decision", "RolloutService", "decide"]
