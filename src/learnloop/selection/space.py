"""What Optuna may try for each family: a few parameters, with ranges that hold each family's
defaults (so a search can start from the parameters a model already has)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from learnloop.errors import ValidationError

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class Dim:
    name: str  # the family's parameter
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()  # a categorical dimension when set

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices:
            return trial.suggest_categorical(self.name, self.choices)
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def holds(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        return isinstance(value, int | float) and not isinstance(value, bool) and self.low <= value <= self.high


_CLASS_WEIGHT = Dim("class_weight", choices=(None, "balanced"))
SPACES: dict[str, tuple[Dim, ...]] = {
    "tfidf-logreg": (
        Dim("C", 1e-2, 1e2, log=True),
        Dim("ngram_max", 1, 3, integer=True),
        Dim("min_df", 1, 3, integer=True),
        Dim("sublinear_tf", choices=(True, False)),
        _CLASS_WEIGHT,
    ),
    "embedding-logreg": (Dim("C", 1e-2, 1e2, log=True), _CLASS_WEIGHT),
    "incremental": (
        Dim("alpha", 1e-7, 1e-3, log=True),
        Dim("ngram_max", 1, 3, integer=True),
        Dim("epochs", 2, 20, integer=True),
    ),
}


def space_of(family: str) -> tuple[Dim, ...]:
    try:
        return SPACES[family]
    except KeyError:
        raise ValidationError(
            f"family {family!r} has no search space; searchable: {', '.join(sorted(SPACES))}",
            field="policy.search_families",
        ) from None


def suggest(space: tuple[Dim, ...], trial: optuna.Trial) -> dict[str, Any]:
    return {dim.name: dim.suggest(trial) for dim in space}


def start_point(space: tuple[Dim, ...], params: Mapping[str, Any]) -> dict[str, Any] | None:
    """``params`` as a trial of the space (the first one tried), or None where one lies outside it."""
    point = {dim.name: params.get(dim.name) for dim in space}
    return point if all(dim.holds(point[dim.name]) for dim in space) else None
