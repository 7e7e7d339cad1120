"""Fitting one LoRA adapter on a base, in stages, with TRL on CPU: supervised fine-tuning on
good answers (``sft``), then learning from preferences, paired (``dpo``) or unpaired (``kto``).

One adapter carries through every stage: SFT trains it from zero; DPO and KTO go on from what
SFT made, against a frozen copy of it as their reference (TRL copies a ``PeftModel``'s
adapter into a ``ref`` adapter when it is given no reference model), so the preference stage
moves the model away from the SFT model, not from the base. The copy is dropped after its
stage; the adapter saved is the trained one alone.

The settings that matter on a CPU-only machine (../shared/LLM.md): fp32 (``bf16=False``; TRL
defaults to bf16), no gradient checkpointing, one torch thread by default (a training process
shares the machine with a server), LoRA learning rates around 1e-3 (TRL's defaults are for
full fine-tuning and barely move LoRA). With a chat template, rows are conversations and the
loss is on the answer only; a ``system_prompt`` leads every conversation that has none, as
where the adapter is served (``LocalGenerator``). A time budget stops the stage in progress
after its current step and skips the stages after it; ``report`` hears every logged step.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from learnloop.errors import InsufficientDataError, ValidationError
from learnloop.families.causal_lm.bases import BaseModelRef
from learnloop.families.causal_lm.conversation import Turn, conversation
from learnloop.families.causal_lm.extras import require_llm_extra
from learnloop.families.causal_lm.runtime import save_adapter

StageKind = Literal["sft", "dpo", "kto"]
# report(stage, step, of steps, loss): every logged training step of every stage
StepReport = Callable[[str, int, int, float | None], None]


@dataclass(frozen=True)
class SftExample:
    messages: Sequence[Turn]  # the conversation up to the answer
    response: str


@dataclass(frozen=True)
class PreferenceExample:
    messages: Sequence[Turn]
    chosen: str
    rejected: str


@dataclass(frozen=True)
class KtoExample:
    messages: Sequence[Turn]
    response: str
    desirable: bool


Example = SftExample | PreferenceExample | KtoExample


@dataclass(frozen=True)
class LoraParams:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class StageParams:
    learning_rate: float = 1e-3
    max_steps: int = -1  # > 0 overrides epochs
    epochs: float = 1.0
    batch_size: int = 4
    max_length: int = 512
    beta: float = 0.1  # dpo and kto: how far from the reference the stage may move
    sft_weight: float = 0.0  # dpo: weight of the chosen answers' NLL added to the loss (0: none)


@dataclass(frozen=True)
class Stage:
    kind: StageKind
    examples: Sequence[Example]
    params: StageParams = field(default_factory=StageParams)


@dataclass(frozen=True)
class StageOutcome:
    kind: StageKind
    examples: int
    steps: int
    train_loss: float
    seconds: float
    stopped_by_budget: bool = False
    logs: dict[str, float] = field(default_factory=dict)  # the stage's last logged figures (DPO's reward margins...)


@dataclass(frozen=True)
class AdapterOutcome:
    directory: Path
    stages: tuple[StageOutcome, ...]
    skipped: tuple[StageKind, ...]  # stages the time budget left no room for
    seconds: float

    @property
    def steps(self) -> int:
        return sum(s.steps for s in self.stages)


def import_stack() -> None:
    """Import what a fit uses (torch, transformers, peft, datasets, TRL's trainers): the seconds
    a training process spends on it before its first fit, spent ahead of time (``warm``)."""
    require_llm_extra("trl", "datasets")
    import datasets  # noqa: F401
    import peft  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from trl.trainer.dpo_trainer import DPOTrainer  # noqa: F401
    from trl.trainer.sft_trainer import SFTTrainer  # noqa: F401


def train_adapter(
    base: BaseModelRef,
    stages: Sequence[Stage],
    directory: Path,
    *,
    lora: LoraParams | None = None,
    system_prompt: str | None = None,
    seed: int = 0,
    threads: int = 1,
    budget_seconds: float = 0.0,
    report: StepReport | None = None,
) -> AdapterOutcome:
    """Fit one LoRA adapter over ``base`` through ``stages`` in order and save it with its
    manifest into the new directory ``directory``. ``budget_seconds`` (0: none) bounds the
    whole fit; at least one step of the first stage always runs."""
    if not stages:
        raise InsufficientDataError("nothing to train the adapter on: no stage")
    for stage in stages:
        _check_stage(stage)
    require_llm_extra("trl", "datasets")
    with warnings.catch_warnings():
        # peft reads transformers' deprecated ``is_gradient_checkpointing``; nothing of ours calls it
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        return _train(
            base, stages, directory, lora or LoraParams(), system_prompt, seed, threads, budget_seconds, report
        )


def _check_stage(stage: Stage) -> None:
    if not stage.examples:
        raise InsufficientDataError(f"the {stage.kind} stage has no examples")
    for example in stage.examples:
        texts = [example.chosen, example.rejected] if isinstance(example, PreferenceExample) else [example.response]
        if not example.messages or any(not t for t in texts):
            raise ValidationError(
                f"every {stage.kind} example needs a conversation and non-empty answers", field="rows"
            )
    if stage.kind == "kto" and len({e.desirable for e in stage.examples if isinstance(e, KtoExample)}) < 2:
        raise InsufficientDataError("the kto stage needs desirable and undesirable answers")


def _train(
    base: BaseModelRef,
    stages: Sequence[Stage],
    directory: Path,
    lora: LoraParams,
    system_prompt: str | None,
    seed: int,
    threads: int,
    budget_seconds: float,
    report: StepReport | None,
) -> AdapterOutcome:
    import datasets
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # A fit's terminal is the CLI's progress bar or a server's log: no bars or printed losses.
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    tokenizer: Any = AutoTokenizer.from_pretrained(base.path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model: Any = AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(
            r=lora.rank,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            task_type="CAUSAL_LM",
        ),
    )
    chat = bool(tokenizer.chat_template)
    started = time.monotonic()
    deadline = started + budget_seconds if budget_seconds > 0 else None
    done: list[StageOutcome] = []
    skipped: list[StageKind] = []
    with tempfile.TemporaryDirectory(prefix="learnloop-tune-") as scratch:
        for stage in stages:
            if done and deadline is not None and time.monotonic() >= deadline:
                skipped.append(stage.kind)
                continue
            records = [_record(example, chat, system_prompt) for example in stage.examples]
            outcome = _run_stage(stage, model, tokenizer, records, scratch, seed, deadline, report)
            done.append(outcome)
            if "ref" in model.peft_config:  # the preference stage's frozen reference copy
                model.delete_adapter("ref")
            model.set_adapter("default")
        model.eval()
        save_adapter(model, directory, base=base)
    return AdapterOutcome(directory, tuple(done), tuple(skipped), time.monotonic() - started)


def _answer(text: str, chat: bool) -> Any:
    if chat:
        return [{"role": "assistant", "content": text}]
    return text if text.startswith(" ") else f" {text}"  # one BPE boundary after the prompt (LLM.md #9)


def _record(example: Example, chat: bool, system_prompt: str | None) -> dict[str, Any]:
    """The TRL dataset row of ``example``: conversational with a chat template, else plain text."""
    turns = conversation(example.messages, system_prompt)
    prompt: Any = turns if chat else "\n\n".join(t["content"] for t in turns)
    if isinstance(example, PreferenceExample):
        return {"prompt": prompt, "chosen": _answer(example.chosen, chat), "rejected": _answer(example.rejected, chat)}
    if isinstance(example, KtoExample):
        return {"prompt": prompt, "completion": _answer(example.response, chat), "label": example.desirable}
    return {"prompt": prompt, "completion": _answer(example.response, chat)}


def _run_stage(
    stage: Stage,
    model: Any,
    tokenizer: Any,
    records: list[dict[str, Any]],
    scratch: str,
    seed: int,
    deadline: float | None,
    report: StepReport | None,
) -> StageOutcome:
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback

    p = stage.params
    common: dict[str, Any] = {
        "output_dir": f"{scratch}/{stage.kind}",
        "bf16": False,
        "fp16": False,
        "use_cpu": True,
        "per_device_train_batch_size": p.batch_size,
        "num_train_epochs": p.epochs,
        "max_steps": p.max_steps,
        "learning_rate": p.learning_rate,
        "max_length": p.max_length,
        "seed": seed,
        "data_seed": seed,
        "save_strategy": "no",
        "report_to": [],
        "logging_steps": 1,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }
    watcher = _stage_callback(stage.kind, deadline, report)
    trainer = _trainer(stage, model, tokenizer, Dataset.from_list(records), common, watcher)
    trainer.remove_callback(PrinterCallback)
    started = time.monotonic()
    output = trainer.train()
    return StageOutcome(
        kind=stage.kind,
        examples=len(records),
        steps=int(output.global_step),
        train_loss=float(output.training_loss),
        seconds=time.monotonic() - started,
        stopped_by_budget=watcher.stopped,
        logs=watcher.last,
    )


def _trainer(stage: Stage, model: Any, tokenizer: Any, dataset: Any, common: dict[str, Any], watcher: Any) -> Any:
    p = stage.params
    if stage.kind == "sft":
        from trl.trainer.sft_config import SFTConfig
        from trl.trainer.sft_trainer import SFTTrainer

        config = SFTConfig(**common, activation_checkpointing=False)
        return SFTTrainer(
            model=model, args=config, train_dataset=dataset, processing_class=tokenizer, callbacks=[watcher]
        )
    if stage.kind == "dpo":
        from trl.trainer.dpo_config import DPOConfig
        from trl.trainer.dpo_trainer import DPOTrainer

        losses: dict[str, Any] = (
            {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, p.sft_weight]} if p.sft_weight > 0 else {}
        )
        dpo = DPOConfig(**common, beta=p.beta, activation_checkpointing=False, **_reference(stage), **losses)
        return DPOTrainer(model=model, args=dpo, train_dataset=dataset, processing_class=tokenizer, callbacks=[watcher])
    from trl.trainer.kto_config import KTOConfig
    from trl.trainer.kto_trainer import KTOTrainer

    desirable = sum(1 for r in dataset["label"] if r)
    undesirable = len(dataset) - desirable
    # TRL's advice: desirable_weight * desirable / (undesirable_weight * undesirable) in [1, 4/3]
    kto = KTOConfig(
        **common,
        beta=p.beta,
        activation_checkpointing=False,
        desirable_weight=1.15 * undesirable / desirable if desirable > undesirable else 1.0,
        undesirable_weight=1.0 if desirable > undesirable else desirable / undesirable,
        **_reference(stage),
    )
    return KTOTrainer(model=model, args=kto, train_dataset=dataset, processing_class=tokenizer, callbacks=[watcher])


def _reference(stage: Stage) -> dict[str, Any]:
    """How a preference stage gets its reference's log-probabilities: computed once for every
    example before the first step when the stage goes over its examples more than once (the
    same figures as computing them at every step: the reference is frozen), else at each step.
    Measured (SmolLM2-135M, 2 threads, 20 pairs, 16 steps of 4: 3.2 passes): the steps 137 ->
    95-104 s and the whole fit, that pass included, 147 -> 115-122 s, with identical losses and
    rewards; at 4 steps
    (0.8 passes) the fit took 52 s against 45 (a pass over every pair, and a hash of the model
    to key the computed figures)."""
    p = stage.params
    passes = p.max_steps * p.batch_size / max(len(stage.examples), 1) if p.max_steps > 0 else p.epochs
    return {"precompute_ref_log_probs": passes > 1, "precompute_ref_batch_size": 2 * p.batch_size}


def _stage_callback(kind: str, deadline: float | None, report: StepReport | None) -> Any:
    """A ``TrainerCallback`` that reports each logged step of stage ``kind`` and stops the
    stage once the time budget is spent (``stopped``; ``last``: the last logged figures)."""
    from transformers import TrainerCallback

    class StageCallback(TrainerCallback):
        def __init__(self) -> None:
            self.stopped = False
            self.last: dict[str, float] = {}

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            figures = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float)}
            if "loss" in figures:
                self.last = figures
                if report is not None:
                    report(kind, int(state.global_step), int(state.max_steps), figures["loss"])

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
            if deadline is not None and time.monotonic() >= deadline:
                self.stopped = True
                control.should_training_stop = True
            return control

    return StageCallback()
