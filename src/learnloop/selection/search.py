"""Optuna's search of one family's parameters, inside a time budget.

The objective is the family's selection score (``scoring``) with the parameters a trial
suggests; each fold's running score is reported so a trial already behind the median of
earlier ones at that fold is pruned. The first trial is the parameters the family starts
from, so the search never ends below them on that score.

A study lives in learnloop's own database when ``StudyPlace.url`` names it (Optuna's RDB
storage on the same SQLite or PostgreSQL URL; its tables sit beside learnloop's), so a study
outlives the process, the API and the dashboard read it, and several processes (on
PostgreSQL) can share one: each ``search`` on the same study name adds its trials to it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from learnloop.errors import ValidationError
from learnloop.families import get_family
from learnloop.selection.scoring import SelectionData, score_folds
from learnloop.selection.space import space_of, start_point, suggest

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)
SQLITE_BUSY_SECONDS = 30  # a trial written while the server writes waits this long for the lock
STARTUP_TRIALS = 3  # trials that are never pruned: the median needs them
Report = Callable[[float, str], None]


def optuna_module() -> Any:
    """Optuna, imported on first use, quiet (its own log says each trial at INFO)."""
    try:
        import optuna
    except ImportError:  # pragma: no cover - a core dependency; kept for a clear message
        raise ValidationError("parameter search needs optuna: pip install optuna", field="optuna") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@dataclass(frozen=True)
class StudyPlace:
    """Where a search's study lives: learnloop's database URL ("" keeps it in memory), its
    name, and what it records about itself (model, family, snapshot...)."""

    url: str
    name: str
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchResult:
    study: str
    params: dict[str, Any]  # the best trial's, resolved (every parameter of the family)
    fold_scores: list[float]
    score: float
    trials: int  # in the study (every process's), finished or pruned
    pruned: int
    failed: int


def storage_url(url: str) -> str:
    """Learnloop's database URL as Optuna's storage opens it (psycopg 3 for PostgreSQL)."""
    return "postgresql+psycopg://" + url.removeprefix("postgresql://") if url.startswith("postgresql://") else url


@contextmanager
def opened_storage(url: str) -> Iterator[Any]:
    """Optuna's RDB storage on learnloop's database, closed on exit. Optuna's version check
    reads ``alembic_version``, which is learnloop's own in a shared database: it is skipped."""
    optuna = optuna_module()
    sqlite = url.startswith("sqlite")
    kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_SECONDS}} if sqlite else {"pool_pre_ping": True}
    storage = optuna.storages.RDBStorage(storage_url(url), engine_kwargs=kwargs, skip_compatibility_check=True)
    try:
        yield storage
    finally:
        storage.remove_session()
        storage.engine.dispose()


def _trial_count(study: optuna.Study, state: Any) -> int:
    return len(study.get_trials(deepcopy=False, states=(state,)))


def search(
    family: str,
    base: Mapping[str, Any],
    data: SelectionData,
    *,
    budget_seconds: float,
    max_trials: int,
    place: StudyPlace,
    seed: int = 0,
    report: Report | None = None,
) -> SearchResult:
    """Search ``family``'s space from ``base`` for at most ``budget_seconds`` (a trial running
    then finishes or is pruned) and ``max_trials`` trials of this call."""
    op = optuna_module()
    fitter = get_family(family)
    space = space_of(family)
    started = time.monotonic()

    def objective(trial: optuna.Trial) -> float:
        params = fitter.resolve_params({**base, **suggest(space, trial)})
        trial.set_user_attr("params", params)

        def after_fold(k: int, running: float) -> None:
            trial.report(running, k)
            if trial.should_prune():
                raise op.TrialPruned()

        found = score_folds(family, params, data, seed=seed, after_fold=after_fold)
        trial.set_user_attr("fold_scores", found.scores)
        return found.score

    def said(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if report is not None:
            best = _best(study)
            shown = f"best {best.value:.3f}" if best is not None else "no trial finished yet"
            elapsed = time.monotonic() - started
            report(
                min(elapsed / budget_seconds, 1.0),
                f"{family}: trial {trial.number} {trial.state.name.lower()}; {shown}",
            )

    with opened_storage(place.url) if place.url else _in_memory() as storage:
        study = op.create_study(
            study_name=place.name,
            storage=storage,
            direction="maximize",
            sampler=op.samplers.TPESampler(seed=seed),
            pruner=op.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS, n_warmup_steps=0),
            load_if_exists=True,
        )
        for key, value in {**place.attrs, "family": family}.items():
            study.set_user_attr(key, value)
        first = start_point(space, fitter.resolve_params(base))
        if first is not None:
            study.enqueue_trial(first, skip_if_exists=True)
        study.optimize(objective, n_trials=max_trials, timeout=budget_seconds, callbacks=[said], catch=(Exception,))
        best = _best(study)
        if best is None:
            failed = study.get_trials(deepcopy=False, states=(op.trial.TrialState.FAIL,))
            why = failed[-1].system_attrs.get("fail_reason", "") if failed else "no trial finished in the budget"
            raise ValidationError(f"the search of {family} found nothing: {why}", field="policy.search_families")
        return SearchResult(
            study=place.name,
            params=dict(best.user_attrs["params"]),
            fold_scores=list(best.user_attrs.get("fold_scores", [])),
            score=float(best.value or 0.0),
            trials=len(study.trials),
            pruned=_trial_count(study, op.trial.TrialState.PRUNED),
            failed=_trial_count(study, op.trial.TrialState.FAIL),
        )


def _best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best finished trial, or None before one finished (Optuna raises)."""
    try:
        return study.best_trial
    except ValueError:
        return None


@contextmanager
def _in_memory() -> Iterator[None]:
    yield None
