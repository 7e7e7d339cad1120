"""Fitting a LoRA adapter on prompt/response rows and storing it: the training process's part
of creating a generative model from data (``models.ModelCreation``).

``fit_adapter`` is a module-level function of plain, picklable inputs, so the training runner
runs it in its child process beside a live server (or in process for the CLI). It resolves the
base (a GGUF base is converted once per home), fits with ``families.causal_lm.fit_lora``, and
puts the adapter (with its manifest) into the artifact store opened from its URL.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from learnloop.artifacts import open_store
from learnloop.families.causal_lm import SftParams, fit_lora, resolve_base
from learnloop.families.causal_lm.tuning import StepReport
from learnloop.tasks.base import Report


@dataclass(frozen=True)
class AdapterSpec:
    base: str  # as the model's params store it: a known base name or an absolute directory
    bases_dir: str  # where a GGUF base is converted (the home's ``bases`` folder)
    rows: list[tuple[str, str]]  # (prompt, response)
    sft: dict[str, Any]  # ``families.lora.check_sft``'s settings
    system_prompt: str | None
    artifact_url: str
    artifact_key: str
    seed: int = 0
    threads: int = 1


@dataclass(frozen=True)
class FittedAdapter:
    artifact_key: str
    train_loss: float
    steps: int
    seconds: float


def sft_params(settings: dict[str, Any], seed: int) -> SftParams:
    return SftParams(
        rank=int(settings["rank"]),
        alpha=int(settings["alpha"]),
        dropout=float(settings["dropout"]),
        learning_rate=float(settings["learning_rate"]),
        epochs=float(settings["epochs"]),
        max_steps=int(settings["max_steps"]),
        batch_size=int(settings["batch_size"]),
        max_length=int(settings["max_length"]),
        seed=seed,
    )


def steps_reported(report: Report, low: float, high: float, stages: Sequence[str] = ()) -> StepReport:
    """A training step report (stage, step, of steps, loss) as a retrain's ``report`` between
    ``low`` and ``high`` of its work, each of the ``stages`` (in order) an equal share of it."""
    share = (high - low) / max(len(stages), 1)

    def step(stage: str, done: int, steps: int, loss: float | None) -> None:
        start = low + share * (stages.index(stage) if stage in stages else 0)
        shown = "" if loss is None else f", loss {loss:.3f}"
        report(start + share * done / max(steps, 1), f"{stage} step {done}/{steps}{shown}")

    return step


def fit_adapter(spec: AdapterSpec, report: Report) -> FittedAdapter:
    """Fit the adapter ``spec`` describes and store it under ``spec.artifact_key``, reporting
    each training step."""
    ref = resolve_base(spec.base, Path(spec.bases_dir))
    with tempfile.TemporaryDirectory(prefix="learnloop-adapter-fit-") as tmp:
        outcome = fit_lora(
            ref,
            spec.rows,
            Path(tmp) / "adapter",
            params=sft_params(spec.sft, spec.seed),
            threads=spec.threads,
            system_prompt=spec.system_prompt,
            report=steps_reported(report, 0.05, 0.95),
        )
        key = open_store(spec.artifact_url).put_dir(spec.artifact_key, outcome.directory)
    return FittedAdapter(artifact_key=key, train_loss=outcome.train_loss, steps=outcome.steps, seconds=outcome.seconds)
