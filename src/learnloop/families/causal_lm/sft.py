"""Fitting a LoRA adapter on prompt/response rows with TRL's ``SFTTrainer``, on CPU.

The settings that matter on a CPU-only machine (../shared/LLM.md): fp32 (``bf16=False``; TRL
defaults to bf16), no gradient checkpointing (TRL's default; pointless for small models), one
torch thread by default (a training process shares the machine with a server), LoRA learning
rates around 1e-3 (TRL's 2e-5 default barely moves LoRA). With a chat template the rows are
conversational prompt/completion pairs, so the loss is on the response only; without one they
are plain text pairs; a ``system_prompt`` leads every conversation, as it does where the
adapter is served (``LocalGenerator``). The base is loaded fresh (training changes it) and the adapter is saved
with its manifest by ``save_adapter``.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from learnloop.errors import InsufficientDataError, ValidationError
from learnloop.families.causal_lm.bases import BaseModelRef
from learnloop.families.causal_lm.extras import require_llm_extra
from learnloop.families.causal_lm.runtime import save_adapter


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


def _rows_dataset(rows: Sequence[tuple[str, str]], chat: bool, system_prompt: str | None = None) -> Any:
    from datasets import Dataset

    records: list[dict[str, Any]]
    if chat:
        lead = [{"role": "system", "content": system_prompt}] if system_prompt else []
        records = [
            {"prompt": [*lead, {"role": "user", "content": p}], "completion": [{"role": "assistant", "content": r}]}
            for p, r in rows
        ]
    else:
        head = f"{system_prompt}\n\n" if system_prompt else ""
        records = [{"prompt": head + p, "completion": r if r.startswith(" ") else f" {r}"} for p, r in rows]
    return Dataset.from_list(records)


def fit_lora(
    base: BaseModelRef,
    rows: Sequence[tuple[str, str]],
    directory: Path,
    *,
    params: SftParams | None = None,
    threads: int = 1,
    system_prompt: str | None = None,
) -> SftOutcome:
    """Fit a LoRA adapter on (prompt, response) ``rows`` over ``base``, each prompt under
    ``system_prompt`` when one is given; save it with its manifest into the new directory
    ``directory``."""
    params = params or SftParams()
    if not rows:
        raise InsufficientDataError("no prompt/response rows to fine-tune on")
    if any(not p or not r for p, r in rows):
        raise ValidationError("every row needs a non-empty prompt and response", field="rows")
    require_llm_extra("trl", "datasets")
    with warnings.catch_warnings():
        # peft reads transformers' deprecated ``is_gradient_checkpointing``; nothing of ours calls it
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        return _fit(base, rows, directory, params, threads, system_prompt)


def _fit(
    base: BaseModelRef,
    rows: Sequence[tuple[str, str]],
    directory: Path,
    params: SftParams,
    threads: int,
    system_prompt: str | None,
) -> SftOutcome:
    import datasets
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import logging as hf_logging
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    # A fit's terminal is the CLI's progress bar or a server's log: no bars or printed losses.
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    torch.set_num_threads(threads)
    tokenizer: Any = AutoTokenizer.from_pretrained(base.path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model: Any = AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.float32)
    lora = LoraConfig(
        r=params.rank,
        lora_alpha=params.alpha,
        lora_dropout=params.dropout,
        target_modules=list(params.target_modules),
        task_type="CAUSAL_LM",
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="learnloop-sft-") as scratch:
        config = SFTConfig(
            output_dir=scratch,
            bf16=False,
            fp16=False,
            use_cpu=True,
            activation_checkpointing=False,  # TRL defaults to checkpointing; its old name warns
            per_device_train_batch_size=params.batch_size,
            num_train_epochs=params.epochs,
            max_steps=params.max_steps,
            learning_rate=params.learning_rate,
            max_length=params.max_length,
            seed=params.seed,
            data_seed=params.seed,
            save_strategy="no",
            report_to=[],
            logging_steps=1,
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=_rows_dataset(rows, chat=bool(tokenizer.chat_template), system_prompt=system_prompt),
            processing_class=tokenizer,
            peft_config=lora,
        )
        trainer.remove_callback(PrinterCallback)
        output = trainer.train()
        trained: Any = trainer.model
        trained.eval()
        save_adapter(trained, directory, base=base)
    return SftOutcome(
        directory=directory,
        steps=int(output.global_step),
        train_loss=float(output.training_loss),
        seconds=time.perf_counter() - started,
    )
