"""What a generation replay is asked to do (``GenerationReplayConfig``, its policy), who
watches it (``GenerationReplayObserver``) and what the stream did (``StreamTrace``)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from learnloop.errors import ValidationError
from learnloop.families.lora import DEFAULT_BASE
from learnloop.policy import Policy
from learnloop.replay.drivers import JobRecord, LoopEvent
from learnloop.replay.generation.users import FeedbackRule

# The replay's policy unless told otherwise (``--set``): a fit of a few minutes on 2 CPU cores
# with SmolLM2-135M (SFT 8 steps, DPO 16 at the demo's rate), the gate's held-out share big
# enough to judge ~15 pairs at the first retrain, no judge (its greedy answers would cost
# generation time), and a swap rollout: the simulated users rate the data's answers, not the
# serving version's, so live outcomes could not tell two versions apart.
GENERATION_REPLAY_POLICY: dict[str, Any] = {
    "cooldown_seconds": 10.0,
    "rollout": "swap",
    "sft_steps": 8,
    "dpo_steps": 16,
    "dpo_learning_rate": 2e-3,
    "kto_steps": 16,
    "min_sft_rows": 8,
    "min_pairs": 8,
    "min_kto_rows": 16,
    "train_max_length": 512,
    "held_out_fraction": 0.3,
    "min_preference_pairs": 10,
    "judge_prompts": 0,
}


@dataclass(frozen=True)
class GenerationReplayConfig:
    out: Path
    dataset: str = "orca"  # hh, orca, orca-sample (shipped) or a JSONL file
    data_dir: Path | None = None  # where hh and orca are (default: shared/datasets/preference above)
    base: str = DEFAULT_BASE
    limit: int | None = 200  # pairs read (stream and held-out slice together)
    held_out_fraction: float = 0.25  # of them, never sent to the loop: the final scoring's pairs
    max_chars: int = 1600  # longer pairs (conversation + the longer answer) are dropped: CPU steps stay short
    feedback: FeedbackRule = FeedbackRule.BOTH
    noise: float = 0.0  # share of users who answer against the data
    retrain_every: int = 50  # pairs of feedback that trigger a retrain (unless policy names retrain_every)
    policy: dict[str, Any] = field(default_factory=dict)  # changes to GENERATION_REPLAY_POLICY
    rate: float = 1.0  # pairs per simulated second
    seed: int = 0
    threads: int = 1  # torch threads of the fits and the scoring
    database_url: str | None = None

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.retrain_every < 1 or self.max_chars < 1 or self.threads < 1:
            raise ValidationError("rate, retrain_every, max_chars and threads must be positive")
        if self.limit is not None and self.limit < 2:
            raise ValidationError("limit must be at least 2 pairs", field="limit")

    def policy_settings(self) -> dict[str, Any]:
        events = self.retrain_every * self.feedback.events_per_pair
        return {**GENERATION_REPLAY_POLICY, "retrain_every": events, **self.policy}

    def policy_object(self) -> Policy:
        return Policy().updated(self.policy_settings())

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": "generation",
            "dataset": self.dataset,
            "base": self.base,
            "limit": self.limit,
            "held_out_fraction": self.held_out_fraction,
            "max_chars": self.max_chars,
            "feedback": self.feedback.value,
            "noise": self.noise,
            "retrain_every_pairs": self.retrain_every,
            "policy": self.policy_settings(),
            "rate": self.rate,
            "seed": self.seed,
            "threads": self.threads,
        }


class GenerationReplayObserver(Protocol):
    def stage(self, message: str) -> None: ...

    def pair(self, done: int, total: int, version: int) -> None:
        """``done`` of ``total`` pairs sent; ``version`` answers the model's traffic now."""
        ...

    def event(self, event: LoopEvent, item: int) -> None: ...

    def step(self, what: str, done: int, total: int) -> None:
        """Progress of the oracle's fit (``what``: its stage) or of the final scoring."""
        ...


class QuietGenerationObserver:
    def stage(self, message: str) -> None:
        pass

    def pair(self, done: int, total: int, version: int) -> None:
        pass

    def event(self, event: LoopEvent, item: int) -> None:
        pass

    def step(self, what: str, done: int, total: int) -> None:
        pass


@dataclass
class StreamTrace:
    """What the stream did: per pair sent, its time and the version serving then; refusals;
    the loop's events and jobs."""

    times: list[datetime] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)  # stream index of each pair sent
    untruthful: int = 0
    feedback_events: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    events: list[LoopEvent] = field(default_factory=list)
    jobs: list[JobRecord] = field(default_factory=list)

    def pairs_before(self, at: datetime) -> int:
        """Pairs sent before ``at`` (an event's time)."""
        return bisect.bisect_left(self.times, at)
