"""The default base, end to end: SmolLM2-135M-Instruct converted from the GGUF its package
ships, loaded from the converted copy and answering through the engine. Slow (~1 min, 1.7 GB):
runs only with LEARNLOOP_SLOW_LLM=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from learnloop.families.causal_lm import DEFAULT_BASE, GenerationEngine, GenerationRequest, load_base, resolve_base

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        os.environ.get("LEARNLOOP_SLOW_LLM") != "1", reason="set LEARNLOOP_SLOW_LLM=1 to convert SmolLM2"
    ),
]


def test_smollm2_converts_once_and_answers(tmp_path: Path) -> None:
    ref = resolve_base(DEFAULT_BASE, tmp_path / "bases")
    assert ref.kind == "gguf" and (ref.path / "model.safetensors").is_file()
    assert resolve_base(DEFAULT_BASE, tmp_path / "bases") == ref  # the copy is reused
    assert [p.name for p in (tmp_path / "bases").iterdir()] == [ref.path.name]  # no scratch left behind
    loaded = load_base(ref, threads=1)
    with GenerationEngine(loaded) as engine:
        result = engine.submit(
            GenerationRequest(prompt="What is the capital of France? Answer in one sentence.", max_new_tokens=24)
        ).result(300)
    assert "Paris" in result.text
    assert result.finish_reason in ("stop", "length")
