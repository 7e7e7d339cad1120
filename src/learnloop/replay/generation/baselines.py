"""The oracle of a generation replay: one LoRA adapter fitted from the base on every pair the
stream sent, truthful and none held out, through the loop's own ``plan`` (the same stages,
steps and hyperparameters as its retrains): what the loop could reach had it trained once at
the end on all the feedback, perfectly curated. The static baseline is the base itself."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learnloop.datasets.preference import PreferencePair
from learnloop.families.causal_lm import BaseModelRef
from learnloop.replay.generation.users import oracle_sets

if TYPE_CHECKING:
    from learnloop.replay.generation.config import GenerationReplayConfig, GenerationReplayObserver


@dataclass(frozen=True)
class Oracle:
    directory: Path
    pairs: int
    training: dict[str, Any]  # as a retrain's metrics["training"]
    seconds: float


def fit_oracle(
    base: BaseModelRef,
    pairs: Sequence[PreferencePair],
    config: GenerationReplayConfig,
    directory: Path,
    system_prompt: str | None,
    obs: GenerationReplayObserver,
) -> Oracle:
    from learnloop.families.causal_lm.tuning import LoraParams, train_adapter
    from learnloop.tasks.generation.retrain import plan, training_metrics

    policy = config.policy_object()
    stages = plan(oracle_sets(pairs, config.feedback, datetime.now(UTC)), policy)
    obs.stage(
        "oracle: one adapter fitted on all "
        + f"{len(pairs)} streamed pairs ("
        + ", ".join(f"{s.kind} {s.params.max_steps} steps on {len(s.examples)}" for s in stages)
        + ")"
    )
    if directory.exists():
        shutil.rmtree(directory)
    outcome = train_adapter(
        base,
        stages,
        directory,
        lora=LoraParams(rank=policy.adapters.lora_rank, alpha=policy.adapters.lora_alpha),
        system_prompt=system_prompt,
        seed=config.seed,
        threads=config.threads,
        budget_seconds=policy.adapters.train_budget_seconds,
        report=lambda stage, done, total, loss: obs.step(f"oracle {stage}", done, total),
    )
    return Oracle(outcome.directory, len(pairs), training_metrics(outcome), outcome.seconds)
