"""The ``external`` family: a generative model whose answers are made elsewhere (Claude,
Gemini, an OpenAI model, a vLLM server) and logged with ``POST /v1/models/{model}/generations``.

Its versions hold no artifact (``artifact_uri`` is empty): nothing is fitted, saved or loaded.
The routing cache serves such a version with ``AnsweredElsewhere`` so a server with an external
model starts, /health is fine and the model's routes and feedback work; asking it to generate
raises ``NotSupportedError`` that says where its answers come from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from learnloop.errors import ArtifactError, NotSupportedError, ValidationError
from learnloop.families.base import ParamSpec, Predictor
from learnloop.families.generation import GenerationHandle, GenerationRequest

MAX_SYSTEM_PROMPT_CHARS = 8_000
SYSTEM_PROMPT_PARAM = ParamSpec(
    "system_prompt", "str | None", None, f"What the model answers under (at most {MAX_SYSTEM_PROMPT_CHARS} characters)."
)


def elsewhere_message(model: str) -> str:
    return f"model {model!r}'s answers are made elsewhere; log them with POST /v1/models/{model}/generations"


class AnsweredElsewhere:
    """What serves a version of the external family (a ``Generator``): it refuses to
    generate, saying where the model's answers come from."""

    def __init__(self, model: str) -> None:
        self.model = model

    def submit(self, request: GenerationRequest) -> GenerationHandle:
        raise NotSupportedError(elsewhere_message(self.model), field="model")


class ExternalFamily:
    key = "external"
    summary = "A generative model whose answers are made elsewhere and logged (nothing to train)."
    format_version = 1
    task = "generation"
    trainable = False

    def library_versions(self) -> dict[str, str]:
        return {}

    def parameters(self) -> tuple[ParamSpec, ...]:
        return (SYSTEM_PROMPT_PARAM,)

    def resolve_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``system_prompt``: what the application tells the model it calls (optional, shown
        and kept for training data), a non-empty text up to ``MAX_SYSTEM_PROMPT_CHARS``."""
        unknown = sorted(set(params) - {"system_prompt"})
        if unknown:
            raise ValidationError(
                f"unknown parameter(s) for {self.key}: {', '.join(unknown)}; known: system_prompt", field="params"
            )
        prompt = params.get("system_prompt")
        if prompt is not None:
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValidationError("system_prompt must be a non-empty text", field="params.system_prompt")
            if len(prompt) > MAX_SYSTEM_PROMPT_CHARS:
                raise ValidationError(
                    f"system_prompt has {len(prompt)} characters; the limit is {MAX_SYSTEM_PROMPT_CHARS}",
                    field="params.system_prompt",
                )
            if "\x00" in prompt:
                raise ValidationError("system_prompt contains a NUL character", field="params.system_prompt")
        return {"system_prompt": prompt}

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
        raise NotSupportedError("an external model's answers are made elsewhere: it has nothing to fit", field="family")

    def save(self, predictor: Predictor, directory: Path) -> None:
        raise ArtifactError("a version of an external model has no artifact to save")

    def load(self, directory: Path) -> Predictor:
        raise ArtifactError("a version of an external model has no artifact to load")
