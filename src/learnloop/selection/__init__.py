"""Several candidates per retrain: each family (and, within a time budget, the parameters
Optuna finds for it) scored by forward chaining over the training data that comes before the
gate's evidence; the best one goes on to be fitted and judged by the gate."""

from learnloop.selection.choose import (
    CandidateRecord,
    CandidateSpec,
    Selection,
    beside_update,
    candidate_specs,
    check_selection,
    choose,
)
from learnloop.selection.scoring import SelectionData, score_folds, score_updates
from learnloop.selection.search import StudyPlace, search

__all__ = [
    "CandidateRecord",
    "CandidateSpec",
    "Selection",
    "SelectionData",
    "StudyPlace",
    "beside_update",
    "candidate_specs",
    "check_selection",
    "choose",
    "score_folds",
    "score_updates",
    "search",
]
