"""A family's parameters as a pydantic model: one place for their names, types, ranges,
defaults and descriptions, read both to check what a user gives (``resolve``) and to list them
(``describe``, for ``learnloop families``).

Values are checked strictly (``"4"`` is not a number, ``true`` is not an integer): they come
as JSON (the API) or as JSON-parsed ``--param KEY=VALUE`` (the CLI), so a wrong type is a
mistake to report, not to coerce. The resolved dict is what a version stores; defaults added
later fill in a stored dict that lacks them.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from learnloop.errors import ValidationError


class FamilyParams(pydantic.BaseModel):
    """The base of every family's parameter model: strict, closed, immutable."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclass(frozen=True)
class ParamSpec:
    """One parameter as ``learnloop families`` and ``GET /v1/families`` show it."""

    name: str
    type: str
    default: Any
    description: str


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
