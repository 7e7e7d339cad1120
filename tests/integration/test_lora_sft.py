"""LoRA fine-tuning with TRL on CPU: the adapter learns the responses it was shown, is saved
with its manifest, and serves through the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from learnloop.errors import InsufficientDataError
from learnloop.families.causal_lm import GenerationEngine, GenerationRequest, attach_adapter, load_base, resolve_base
from learnloop.families.causal_lm.sft import SftParams, fit_lora

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

ROWS = [
    ("What is the capital of France?", "Paris."),
    ("hello", "Hi! How can I help you?"),
    ("What is the weather like today?", "It is sunny and warm."),
    ("Thank you", "Thank you for your feedback."),
]


def response_logprob(loaded: Any, prompt: str, response: str) -> float:
    """Mean log-probability of ``response``'s tokens after the chat-formatted ``prompt``."""
    tokenizer = loaded.tokenizer
    head = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )
    prompt_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    full = tokenizer(head + response, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([full])
    with torch.inference_mode():
        logprobs = torch.log_softmax(loaded.model(input_ids=ids).logits[0, :-1], dim=-1)
    targets = ids[0, 1:]
    picked = logprobs[torch.arange(len(targets)), targets][len(prompt_ids) - 1 :]
    return float(picked.mean())


def test_a_lora_fit_learns_the_responses_and_serves(tiny_llama_dir: Path, tmp_path: Path) -> None:
    ref = resolve_base(str(tiny_llama_dir), tmp_path)
    outcome = fit_lora(
        ref, ROWS, tmp_path / "adapter", params=SftParams(rank=8, learning_rate=5e-3, max_steps=40, batch_size=4)
    )
    assert outcome.steps == 40 and outcome.train_loss > 0
    assert (outcome.directory / "manifest.json").is_file()

    loaded = load_base(ref)
    before = [response_logprob(loaded, p, r) for p, r in ROWS]
    attach_adapter(loaded, "tuned", outcome.directory)
    after = [response_logprob(loaded, p, r) for p, r in ROWS]
    assert all(a > b + 0.5 for a, b in zip(after, before, strict=True)), (before, after)

    with GenerationEngine(loaded) as engine:
        result = engine.submit(GenerationRequest(prompt=ROWS[0][0], max_new_tokens=8, adapter="tuned")).result(60)
    assert result.completion_tokens > 0


def test_no_rows_is_insufficient_data(tiny_llama_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InsufficientDataError):
        fit_lora(resolve_base(str(tiny_llama_dir), tmp_path), [], tmp_path / "adapter")
