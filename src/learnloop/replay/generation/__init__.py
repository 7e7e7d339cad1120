"""Replay a real preference stream (prompt, chosen, rejected) through the generative loop with
simulated users, and measure it against the static base and an oracle adapter."""

from learnloop.replay.generation.config import (
    GENERATION_REPLAY_POLICY,
    GenerationReplayConfig,
    GenerationReplayObserver,
)
from learnloop.replay.generation.run import GenerationReplayResult, run_generation_replay
from learnloop.replay.generation.users import FeedbackRule

__all__ = [
    "GENERATION_REPLAY_POLICY",
    "FeedbackRule",
    "GenerationReplayConfig",
    "GenerationReplayObserver",
    "GenerationReplayResult",
    "run_generation_replay",
]
