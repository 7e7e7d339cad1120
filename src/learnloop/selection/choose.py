"""Choose one candidate among several, on the training side only.

Every candidate (a family with its parameters, or the best parameters a search found for it)
gets a selection score from the same forward-chaining folds; the highest wins, a tie going to
the one listed first (the model's own family). Only the winner is fitted in full and meets the
gate's held-out evidence, which no selection fold ever judges on, so trying many candidates
does not raise the gate's chance of passing a worse one. Every candidate tried is recorded,
with its fold scores, and the reason the winner won.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from learnloop.errors import LearnloopError, ValidationError
from learnloop.families import FAMILIES, get_family
from learnloop.policy import SelectionPolicy
from learnloop.selection.scoring import SelectionData, score_folds, score_updates
from learnloop.selection.search import Report, StudyPlace, search
from learnloop.selection.space import space_of


@dataclass(frozen=True)
class CandidateSpec:
    family: str
    params: dict[str, Any]  # where it starts (a search's first trial)
    search: bool = False
    update: bool = False  # continues the champion (``Continuing``); else fitted from scratch


@dataclass(frozen=True)
class CandidateRecord:
    family: str
    params: dict[str, Any]
    searched: bool
    fold_scores: list[float] = field(default_factory=list)
    score: float | None = None  # pooled accuracy over the folds' blocks; None: it failed
    seconds: float = 0.0
    trials: int = 0  # a searched candidate: trials in its study (pruned included)
    pruned: int = 0
    study: str | None = None
    error: str | None = None
    chosen: bool = False
    update: bool = False  # the champion continued; False: fitted from scratch (a refit)


@dataclass(frozen=True)
class Selection:
    family: str
    params: dict[str, Any]
    reason: str
    candidates: list[CandidateRecord]
    folds: int
    judged: int  # examples the folds scored each candidate on
    update: bool = False  # the winner continues the champion (an update), not a fit from scratch

    @property
    def refit_over_update(self) -> bool:
        """A fit from scratch won over the champion's update: the candidate must not continue it."""
        return not self.update and any(c.update for c in self.candidates)

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "params": self.params,
            "reason": self.reason,
            "metric": "accuracy",
            "folds": self.folds,
            "judged_examples": self.judged,
            "update": self.update,
            "candidates": [asdict(c) for c in self.candidates],
        }


def candidate_specs(
    family: str, params: Mapping[str, Any], policy: SelectionPolicy, task: str = "classification"
) -> list[CandidateSpec]:
    """The model's own family first (with its parameters), then the policy's candidates (with
    their defaults), each marked for search or not; a bad name is a ``ValidationError``."""
    names = list(dict.fromkeys((family, *policy.candidates)))
    for name in names[1:]:
        known = [k for k, f in FAMILIES.items() if f.task == task and f.trainable]
        if name not in known:
            raise ValidationError(
                f"policy.candidate_families names {name!r}; "
                f"families a {task} model can train: {', '.join(sorted(known))}",
                field="policy.candidate_families",
            )
    for name in policy.searched:
        if name not in names:
            raise ValidationError(
                f"policy.search_families names {name!r}, which is neither the model's family ({family}) "
                "nor in policy.candidate_families",
                field="policy.search_families",
            )
        space_of(name)
    return [
        CandidateSpec(
            name,
            dict(params) if name == family else get_family(name).resolve_params({}),
            search=name in policy.searched,
        )
        for name in names
    ]


def beside_update(specs: Sequence[CandidateSpec], family: str) -> list[CandidateSpec]:
    """``specs`` with an update of the champion (of ``family``, which would continue it) put
    before the fit from scratch of that family: both compete, a tie going to the update (the
    family's own way, and the cheaper to repeat). A searched candidate stays the refit."""
    found: list[CandidateSpec] = []
    for spec in specs:
        if spec.family == family and not any(s.update for s in found):
            found.append(CandidateSpec(family, dict(spec.params), update=True))
        found.append(spec)
    return found


def check_selection(family: str, params: Mapping[str, Any], policy: SelectionPolicy, task: str) -> None:
    """A model's selection settings, checked where its policy is set (not first at a retrain)."""
    if task != "classification":
        if policy != SelectionPolicy():
            raise ValidationError(
                f"policy.candidate_families and the search settings are for classifiers; a {task} model "
                "trains its own family",
                field="policy.candidate_families",
            )
        return
    candidate_specs(family, params, policy, task)


def choose(
    specs: Sequence[CandidateSpec],
    data: SelectionData,
    policy: SelectionPolicy,
    *,
    study: StudyPlace,
    seed: int = 0,
    report: Report | None = None,
) -> Selection:
    """Score every candidate (searching those marked for it, sharing the budget) and pick the
    best. A candidate that fails is recorded with its error; all failing is an error."""
    searched = sum(spec.search for spec in specs) or 1
    records: list[CandidateRecord] = []
    for k, spec in enumerate(specs):
        if report is not None:
            report(k / len(specs), f"candidate {k + 1} of {len(specs)}: {spec.family}")
        records.append(_tried(spec, data, policy.search_budget_seconds / searched, policy.search_trials, study, seed))
    finished = [r for r in records if r.score is not None]
    if not finished:
        raise ValidationError(
            "no candidate could be scored: " + "; ".join(f"{r.family}: {r.error}" for r in records),
            field="policy.candidate_families",
        )
    winner = max(finished, key=lambda r: r.score or 0.0)  # max keeps the first of equals
    records = [CandidateRecord(**{**asdict(r), "chosen": r is winner}) for r in records]
    return Selection(
        winner.family, winner.params, _reason(records, data), records, len(data.folds), data.judged, winner.update
    )


def _tried(
    spec: CandidateSpec, data: SelectionData, budget: float, trials: int, study: StudyPlace, seed: int
) -> CandidateRecord:
    started = time.perf_counter()
    tried = CandidateRecord(spec.family, spec.params, spec.search, update=spec.update)
    try:
        if spec.search:
            place = StudyPlace(study.url, f"{study.name}:{spec.family}", study.attrs)
            found = search(
                spec.family, spec.params, data, budget_seconds=budget, max_trials=trials, place=place, seed=seed
            )
            return replace(
                tried,
                params=found.params,
                fold_scores=found.fold_scores,
                score=found.score,
                seconds=time.perf_counter() - started,
                trials=found.trials,
                pruned=found.pruned,
                study=found.study,
            )
        scored = (score_updates if spec.update else score_folds)(spec.family, spec.params, data, seed=seed)
        return replace(tried, fold_scores=scored.scores, score=scored.score, seconds=time.perf_counter() - started)
    except (LearnloopError, ImportError, ValueError) as exc:  # a missing extra, a fit that failed
        return replace(tried, seconds=time.perf_counter() - started, error=str(exc))


def _reason(records: Sequence[CandidateRecord], data: SelectionData) -> str:
    updated = {r.family for r in records if r.update}

    def named(r: CandidateRecord) -> str:
        return f"{r.family} {'update' if r.update else 'refit'}" if r.family in updated else r.family

    def described(r: CandidateRecord) -> str:
        searched = f" (best of {r.trials} trials)" if r.searched else ""
        return f"{named(r)}{searched} {100 * (r.score or 0.0):.1f}%"

    winner = next(r for r in records if r.chosen)
    others = [r for r in records if r.score is not None and not r.chosen]
    failed = [named(r) for r in records if r.score is None]
    text = (
        f"{described(winner)} right over {data.judged} examples in {len(data.folds)} forward-chaining folds "
        "of the training data before the gate's evidence"
    )
    if others:
        text += "; ahead of " + ", ".join(described(r) for r in others)
    if any(r.score == winner.score for r in others):
        text += (
            " (a tie goes to the candidate listed first: the champion's update, the model's own family, "
            "then the policy's order)"
        )
    if failed:
        text += "; failed: " + ", ".join(failed)
    return text
