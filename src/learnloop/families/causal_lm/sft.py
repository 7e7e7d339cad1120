"""Fitting a LoRA adapter on prompt/response rows (a generative model created from data,
``learnloop init --task generation --data``): one SFT stage of ``tuning.train_adapter``, whose
docstring holds the CPU settings that matter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from learnloop.errors import InsufficientDataError, ValidationError
from learnloop.families.causal_lm.bases import BaseModelRef
from learnloop.families.causal_lm.tuning import LoraParams, SftExample, Stage, StageParams, StepReport, train_adapter


@dataclass(frozen=True)
class SftParams:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    learning_rate: float = 1e-3
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 4
    max_length: int = 512
    seed: int = 0


@dataclass(frozen=True)
class SftOutcome:
    directory: Path
    steps: int
    train_loss: float
    seconds: float


def fit_lora(
    base: BaseModelRef,
    rows: Sequence[tuple[str, str]],
    directory: Path,
    *,
    params: SftParams | None = None,
    threads: int = 1,
    system_prompt: str | None = None,
    report: StepReport | None = None,
) -> SftOutcome:
    """Fit a LoRA adapter on (prompt, response) ``rows`` over ``base``, each prompt under
    ``system_prompt`` when one is given; save it with its manifest into the new directory
    ``directory``. One SFT stage of ``tuning.train_adapter``."""
    params = params or SftParams()
    if not rows:
        raise InsufficientDataError("no prompt/response rows to fine-tune on")
    if any(not p or not r for p, r in rows):
        raise ValidationError("every row needs a non-empty prompt and response", field="rows")
    stage = Stage(
        "sft",
        [SftExample([{"role": "user", "content": p}], r) for p, r in rows],
        StageParams(
            learning_rate=params.learning_rate,
            max_steps=params.max_steps,
            epochs=params.epochs,
            batch_size=params.batch_size,
            max_length=params.max_length,
        ),
    )
    outcome = train_adapter(
        base,
        [stage],
        directory,
        lora=LoraParams(params.rank, params.alpha, params.dropout, params.target_modules),
        system_prompt=system_prompt,
        seed=params.seed,
        threads=threads,
        report=report,
    )
    (fitted,) = outcome.stages
    return SftOutcome(directory=directory, steps=fitted.steps, train_loss=fitted.train_loss, seconds=outcome.seconds)
