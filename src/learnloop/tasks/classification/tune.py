"""``learnloop tune``'s work in the training process: curate the model's data as a retrain
would, then let Optuna search one family's parameters on the training side of the snapshot
(the same forward-chaining folds a retrain's selection uses, never the gate's evidence), for
at most a time budget, in a study kept in learnloop's database."""

from __future__ import annotations

from dataclasses import dataclass

from learnloop.errors import InsufficientDataError
from learnloop.families import get_family
from learnloop.selection import StudyPlace, search
from learnloop.selection.search import SearchResult
from learnloop.tasks.base import Report, RetrainInputs
from learnloop.tasks.classification.retrain import curate, weights
from learnloop.tasks.classification.select import selection_data


@dataclass(frozen=True)
class TuneSpec:
    inputs: RetrainInputs  # the model's data up to the study's cutoff
    family: str
    budget_seconds: float
    max_trials: int
    study: str
    seed: int = 0


@dataclass(frozen=True)
class TuneOutcome:
    family: str
    snapshot: str
    folds: int
    judged: int
    result: SearchResult


def tune(spec: TuneSpec, report: Report) -> TuneOutcome:
    inputs, model = spec.inputs, spec.inputs.model
    snapshot = curate(inputs)
    data = selection_data(
        model.policy.selection, model.labels, snapshot, weights(snapshot, model.policy.curation.feedback_weight)
    )
    if not data.folds:
        raise InsufficientDataError(
            f"{len(data.texts)} training examples before the gate's evidence are too few for "
            f"{model.policy.selection.selection_blocks} forward-chaining blocks (policy.selection_blocks)"
        )
    base = dict(model.params) if spec.family == model.family else get_family(spec.family).resolve_params({})
    place = StudyPlace(
        inputs.study_url,
        spec.study,
        {"model": model.name, "kind": "tune", "snapshot": snapshot.hash, "cutoff": inputs.cutoff.isoformat()},
    )
    report(0.0, f"searching {spec.family} on {data.judged} examples in {len(data.folds)} folds")
    result = search(
        spec.family,
        base,
        data,
        budget_seconds=spec.budget_seconds,
        max_trials=spec.max_trials,
        place=place,
        seed=spec.seed,
        report=report,
    )
    return TuneOutcome(spec.family, snapshot.hash, len(data.folds), data.judged, result)
