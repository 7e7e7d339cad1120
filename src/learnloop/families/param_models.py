"""The classifier families' parameters, a pydantic model each: one place for their names,
types, ranges, defaults and descriptions, read both to check what a user gives (``resolve``)
and to list them (``describe``, for ``learnloop families``). A family imports this module when
it first checks or lists its parameters, so importing learnloop (``learnloop --help``) loads
no pydantic.

Values are checked strictly (``"4"`` is not a number, ``true`` is not an integer): they come
as JSON (the API) or as JSON-parsed ``--param KEY=VALUE`` (the CLI), so a wrong type is a
mistake to report, not to coerce. The resolved dict is what a version stores; defaults added
later fill in a stored dict that lacks them.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

import pydantic
from pydantic import Field, model_validator

from learnloop.errors import ValidationError
from learnloop.families.base import ParamSpec
from learnloop.families.sentence_encoder import MAX_TOKENS


class FamilyParams(pydantic.BaseModel):
    """The base of every family's parameter model: strict, closed, immutable."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)


class TfidfLogRegParams(FamilyParams):
    ngram_min: int = Field(1, ge=1, le=5, description="Shortest n-gram (words, or characters with char_wb).")
    ngram_max: int = Field(2, ge=1, le=8, description="Longest n-gram.")
    analyzer: Literal["word", "char_wb"] = Field(
        "word", description="word n-grams, or character n-grams inside word boundaries (char_wb)."
    )
    min_df: int = Field(1, ge=1, description="Drop terms found in fewer texts.")
    max_df: float = Field(1.0, gt=0.0, le=1.0, description="Drop terms found in a larger share of texts.")
    max_features: int | None = Field(300_000, ge=1, description="Keep the most frequent terms (null: all).")
    sublinear_tf: bool = Field(True, description="1 + log(term frequency).")
    C: float = Field(10.0, gt=0.0, description="Inverse regularisation strength of the logistic regression.")
    class_weight: Literal["balanced"] | None = Field(None, description="balanced: weigh classes by 1/frequency.")
    max_iter: int = Field(1_000, ge=1, description="Solver iterations at most.")
    keep_counts: bool = Field(
        True,
        description="Keep the training texts' term counts with the version (a retrain from it counts only new texts).",
    )

    @model_validator(mode="after")
    def _ngram_range(self) -> TfidfLogRegParams:
        if self.ngram_min > self.ngram_max:
            raise ValueError(f"ngram_min {self.ngram_min} is above ngram_max {self.ngram_max}")
        return self


class EmbeddingLogRegParams(FamilyParams):
    C: float = Field(4.0, gt=0.0, description="Inverse regularisation strength of the logistic regression.")
    class_weight: Literal["balanced"] | None = Field(None, description="balanced: weigh classes by 1/frequency.")
    max_iter: int = Field(1_000, ge=1, description="Solver iterations at most.")
    batch_size: int = Field(64, ge=1, le=1024, description="Texts embedded per forward pass.")
    max_tokens: int = Field(MAX_TOKENS, ge=8, le=MAX_TOKENS, description="Tokens of a text embedded (the rest cut).")
    keep_vectors: bool = Field(
        True, description="Save the training texts' vectors with the version (a retrain from it embeds only new texts)."
    )


class IncrementalParams(FamilyParams):
    n_features: int = Field(2**20, ge=2**10, le=2**24, description="Hashed feature columns.")
    ngram_max: int = Field(2, ge=1, le=3, description="Longest word n-gram.")
    alpha: float = Field(1e-5, gt=0.0, le=1.0, description="L2 regularisation of the SGD.")
    epochs: int = Field(5, ge=1, le=100, description="Passes over the data when trained from scratch.")
    update_epochs: int = Field(3, ge=1, le=100, description="Passes over new and replayed examples in an update.")
    replay_size: int = Field(5_000, ge=0, le=1_000_000, description="Earlier examples kept to replay in updates.")
    replay_ratio: float = Field(1.0, ge=0.0, le=100.0, description="Replayed examples per new example in an update.")
    update_step: float = Field(
        0.5,
        gt=0.0,
        le=100.0,
        description="Constant SGD step size of an update (a fit from scratch uses the 'optimal' schedule, whose "
        "steps of ~3-10 overwrite the old data's weights when run on a few new examples).",
    )


class DpLogRegParams(FamilyParams):
    max_grad_norm: float = Field(1.0, gt=0.0, le=100.0, description="Each row's gradient clipped to this L2 norm.")
    target_epsilon: float | None = Field(
        3.0,
        gt=0.0,
        le=100.0,
        description="Privacy budget of the fit: noise calibrated so the weights are (epsilon, delta)-DP per row "
        "(null: no noise, not private; for comparisons).",
    )
    delta: float | None = Field(None, gt=0.0, lt=1e-2, description="Delta of the guarantee (null: 1/(10 n), n rows).")
    epochs: int = Field(20, ge=1, le=500, description="Passes over the data (more spends the budget in more steps).")
    batch_size: int = Field(256, ge=1, le=65_536, description="Expected rows per step (Poisson sampling).")
    learning_rate: float = Field(2.0, gt=0.0, le=1_000.0, description="Step size on the mean clipped gradient.")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum (applied after the noise: no privacy cost).")
    n_features: int = Field(2**12, ge=2**8, le=2**18, description="Hashed feature columns (fewer: less noise in all).")
    ngram_max: int = Field(2, ge=1, le=3, description="Longest word n-gram.")
    reproducible_noise: bool = Field(
        False,
        description="Noise and batches from the fit's seed (tests, benchmarks only: whoever knows the seed can "
        "replay the noise); false: from the system's entropy.",
    )


def resolve(model: type[FamilyParams], family: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` checked against ``model`` with the defaults filled in; an unknown name or a bad
    value is a ``ValidationError`` naming the parameter (and, for an unknown one, the known ones)."""
    known = list(model.model_fields)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValidationError(
            f"unknown parameter(s) for {family}: {', '.join(unknown)}; known: {', '.join(known)}", field="params"
        )
    try:
        return model.model_validate(dict(params)).model_dump()
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        given = f" (got {first['input']!r})" if name else ""
        where = f"parameter {name} of {family}" if name else f"parameters of {family}"
        raise ValidationError(f"{where}: {first['msg']}{given}", field=f"params.{name}" if name else "params") from None


def describe(model: type[FamilyParams]) -> tuple[ParamSpec, ...]:
    """Every parameter of ``model``: name, type as written, default, description."""
    return tuple(
        ParamSpec(
            name=name,
            type=_type_name(field.annotation),
            default=field.get_default(call_default_factory=True),
            description=field.description or "",
        )
        for name, field in model.model_fields.items()
    )


def _type_name(annotation: Any) -> str:
    """``int``, ``float | null``, ``word | char_wb`` (a choice of values)."""
    if annotation is type(None):
        return "null"
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(str(value) for value in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in typing.get_args(annotation))
    return str(getattr(annotation, "__name__", annotation))
