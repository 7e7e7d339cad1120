"""Optuna studies of a model's parameters: ``learnloop tune`` runs one within a time budget,
and the API, the dashboard and the CLI read them (best parameters, every trial, parameter
importance).

A study lives in learnloop's own database (``selection.search``). ``tune`` names it
``MODEL:FAMILY`` unless told otherwise and records the cutoff of the data it searched on: a
``tune`` started on the same study later, by another process or on another machine (on
PostgreSQL), reads the data up to that same cutoff, so every worker's trials score the same
folds and one study holds them all. ``fresh`` starts the study again on the data up to now.
A retrain's search keeps its own studies (``MODEL:retrain:SNAPSHOT:FAMILY``). ``apply_best``
makes a study's best trial the family and parameters the model's next retrains train with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from learnloop.clock import Clock
from learnloop.domain import Model
from learnloop.errors import ConflictError, NotFoundError, ValidationError, WrongTaskError
from learnloop.families import get_family
from learnloop.registry.service import RegistryService
from learnloop.selection.search import opened_storage, optuna_module
from learnloop.selection.space import space_of
from learnloop.store.db import Database
from learnloop.tasks.classification.tune import TuneOutcome, TuneSpec, tune
from learnloop.training.pipeline import TrainingService
from learnloop.training.study_tables import ensure_study_tables

Progress = Callable[[float, str], None]
DEFAULT_TRIALS = 10_000  # a tune ends by its budget, not by a count, unless asked


@dataclass(frozen=True)
class TrialView:
    number: int
    state: str  # complete, pruned, fail, running, waiting
    value: float | None  # accuracy over the folds' blocks
    params: dict[str, Any]  # what the trial suggested
    fold_scores: list[float]
    intermediate: dict[int, float]  # fold -> accuracy so far (what pruning looked at)
    started: datetime | None
    completed: datetime | None

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.completed is None:
            return None
        return (self.completed - self.started).total_seconds()


@dataclass(frozen=True)
class StudySummary:
    name: str
    model: str
    family: str
    kind: str  # tune or retrain
    trials: int
    best_value: float | None
    started: datetime | None


@dataclass(frozen=True)
class StudyView:
    summary: StudySummary
    attrs: dict[str, Any]
    best_trial: int | None
    best_params: dict[str, Any]  # the family's every parameter, as the best trial ran it
    trials: list[TrialView]
    importance: dict[str, float] = field(default_factory=dict)  # parameter -> share (fANOVA), largest first


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _best(study: Any) -> Any:
    try:
        return study.best_trial
    except ValueError:  # no finished trial yet
        return None


class StudyService:
    def __init__(self, db: Database, registry: RegistryService, training: TrainingService, clock: Clock) -> None:
        self.db = db
        self.registry = registry
        self.training = training
        self.clock = clock

    def ready(self) -> None:
        """Optuna's tables exist before any process opens its storage (``ensure_study_tables``)."""
        ensure_study_tables(self.db)

    def tune(
        self,
        model: str,
        *,
        budget_seconds: float,
        family: str | None = None,
        max_trials: int = DEFAULT_TRIALS,
        study: str | None = None,
        fresh: bool = False,
        progress: Progress | None = None,
    ) -> TuneOutcome:
        """Search a family's parameters (default: the model's) for ``budget_seconds``."""
        found = self.registry.get_model(model)
        if found.task != "classification":
            raise WrongTaskError(f"model {model!r} is a {found.task} model: tune searches a classifier's parameters")
        family = family or found.family
        if get_family(family).task != found.task or not get_family(family).trainable:
            raise ValidationError(f"family {family!r} cannot train a {found.task} model", field="family")
        space_of(family)
        if budget_seconds <= 0:
            raise ValidationError("the budget must be > 0 seconds", field="budget")
        name = study or f"{model}:{family}"
        self.ready()
        cutoff = self._cutoff(model, family, name, fresh)
        spec = TuneSpec(self.training.gather(model, cutoff), family, budget_seconds, max_trials, name)
        return self.training.runner.run(tune, spec, progress)

    def _cutoff(self, model: str, family: str, name: str, fresh: bool) -> datetime:
        """The cutoff an existing study searched on (a joining worker reads the same data), or now."""
        optuna = optuna_module()
        with opened_storage(self.db.url) as storage:
            try:
                attrs = optuna.load_study(study_name=name, storage=storage).user_attrs
            except KeyError:
                return self.clock.now()
            if attrs.get("model") != model or attrs.get("family", family) != family:
                raise ValidationError(
                    f"study {name!r} belongs to {attrs.get('model')!r} ({attrs.get('family')}); name another",
                    field="study",
                )
            if fresh or "cutoff" not in attrs:
                optuna.delete_study(study_name=name, storage=storage)
                return self.clock.now()
            return datetime.fromisoformat(attrs["cutoff"])

    def apply_best(self, model: str, name: str, *, actor: str) -> tuple[Model, StudyView]:
        """The study's best trial becomes what the model's next retrains train: its family
        (the study's) and its parameters, checked and recorded as ``params_changed``."""
        view = self.study(model, name)
        if view.best_trial is None:
            raise ConflictError(f"study {name!r} has no finished trial yet: nothing to apply")
        family = str(view.attrs.get("family") or view.summary.family)
        applied = self.registry.set_family_params(
            model,
            family,
            view.best_params,
            actor,
            data={"study": name, "trial": view.best_trial, "score": view.summary.best_value},
        )
        return applied, view

    def studies(self, model: str) -> list[StudySummary]:
        """The model's studies (tunes and retrains' searches), newest first."""
        self.registry.get_model(model)
        self.ready()
        optuna = optuna_module()
        with opened_storage(self.db.url) as storage:
            found = [
                self._summary(s.study_name, s.user_attrs, s.n_trials, s.best_trial, s.datetime_start)
                for s in optuna.get_all_study_summaries(storage, include_best_trial=True)
                if s.user_attrs.get("model") == model
            ]
        return sorted(found, key=lambda s: s.started or datetime.min.replace(tzinfo=UTC), reverse=True)

    @staticmethod
    def _summary(name: str, attrs: dict[str, Any], trials: int, best: Any, started: datetime | None) -> StudySummary:
        return StudySummary(
            name=name,
            model=str(attrs.get("model", "")),
            family=str(attrs.get("family", "")),
            kind=str(attrs.get("kind", "")),
            trials=trials,
            best_value=None if best is None else best.value,
            started=_utc(started),
        )

    def study(self, model: str, name: str) -> StudyView:
        """One study: every trial, the best parameters, and each parameter's importance."""
        self.registry.get_model(model)
        self.ready()
        optuna = optuna_module()
        with opened_storage(self.db.url) as storage:
            try:
                study = optuna.load_study(study_name=name, storage=storage)
            except KeyError:
                raise NotFoundError(f"model {model!r} has no study {name!r}") from None
            attrs = study.user_attrs
            if attrs.get("model") != model:
                raise NotFoundError(f"model {model!r} has no study {name!r}")
            trials = study.get_trials(deepcopy=False)
            best = _best(study)
            started = min((t.datetime_start for t in trials if t.datetime_start), default=None)
            return StudyView(
                summary=self._summary(name, attrs, len(trials), best, started),
                attrs=dict(attrs),
                best_trial=None if best is None else best.number,
                best_params={} if best is None else dict(best.user_attrs.get("params", best.params)),
                trials=[
                    TrialView(
                        number=t.number,
                        state=t.state.name.lower(),
                        value=t.value,
                        params=dict(t.params),
                        fold_scores=list(t.user_attrs.get("fold_scores", [])),
                        intermediate={int(k): float(v) for k, v in t.intermediate_values.items()},
                        started=_utc(t.datetime_start),
                        completed=_utc(t.datetime_complete),
                    )
                    for t in trials
                ],
                importance=_importance(optuna, study),
            )


def _importance(optuna: Any, study: Any) -> dict[str, float]:
    """Each searched parameter's share of the variance of the score (Optuna's fANOVA); empty
    while too few trials have finished to tell."""
    finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(finished) < 2:
        return {}
    try:
        found = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError):  # e.g. every finished trial with the same parameters
        return {}
    return {str(k): float(v) for k, v in found.items()}
