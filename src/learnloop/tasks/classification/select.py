"""The retrain's selection step: which family and parameters the candidate is fitted with.

With the policy's ``selection`` section at its defaults there is nothing to choose (the
model's own family and parameters, no extra fits). Otherwise every candidate is scored by
forward chaining over the snapshot's training examples that come *before* the gate's
evidence (``Snapshot.first_judged``; the golden set is never in a snapshot's training rows),
so the selection never looks at what the gate judges on (``learnloop.selection``).
"""

from __future__ import annotations

from collections.abc import Sequence

from learnloop.artifacts import open_store
from learnloop.families import get_family
from learnloop.families.base import Continuing
from learnloop.families.manifest import load_predictor
from learnloop.policy import SelectionPolicy
from learnloop.selection import SelectionData, StudyPlace, beside_update, candidate_specs, choose
from learnloop.selection.choose import Selection
from learnloop.tasks.base import Report, RetrainInputs
from learnloop.tasks.classification.snapshot import Snapshot, forward_folds


def selection_data(
    policy: SelectionPolicy, labels: Sequence[str], snapshot: Snapshot, weights: list[float] | None
) -> SelectionData:
    """The training side of the snapshot, cut into the policy's forward-chaining folds (the
    newest ``selection_max`` examples before the gate's evidence are judged; near duplicates
    of a block stay out of the model that judges it)."""
    end = snapshot.first_judged
    side = snapshot.train[:end]
    folds = forward_folds(
        side, max(0, end - policy.selection_max), policy.selection_blocks, snapshot.groups[:end] or None
    )
    return SelectionData(
        texts=[ex.text for ex in side],
        labels=[ex.label for ex in side],
        label_set=list(labels),
        folds=[(fold.train, fold.evaluate) for fold in folds],
        weights=None if weights is None else weights[:end],
        update_size=int(snapshot.counts.get("unseen_by_champion", 0)),
    )


def updating_family(inputs: RetrainInputs, snapshot: Snapshot) -> str | None:
    """The champion's family when its fit would continue the champion (an update, not a fit
    from scratch: ``Continuing``) on this snapshot with the model's parameters; else None."""
    champion = inputs.champion
    if champion is None or champion.erasures or champion.family != inputs.model.family:
        return None
    family = get_family(champion.family)
    if not isinstance(family, Continuing) or not snapshot.counts.get("unseen_by_champion"):
        return None
    previous = load_predictor(open_store(inputs.artifact_url), champion.artifact_uri)
    labels = sorted({ex.label for ex in snapshot.train})
    return champion.family if family.continues(previous, labels, inputs.model.params) else None


def study_place(inputs: RetrainInputs, snapshot: Snapshot) -> StudyPlace:
    """A retrain's studies: one per searched family, named by the model and the snapshot (a
    retried retrain of the same data continues them)."""
    model = inputs.model.name
    return StudyPlace(
        inputs.study_url,
        f"{model}:retrain:{snapshot.hash[:12]}",
        {"model": model, "kind": "retrain", "snapshot": snapshot.hash},
    )


def select(inputs: RetrainInputs, snapshot: Snapshot, weights: list[float] | None, report: Report) -> Selection | None:
    """The chosen candidate, or None when the policy names no other, searches nothing and the
    model's family would not continue the champion (else its update and its refit compete)."""
    model = inputs.model
    specs = candidate_specs(model.family, model.params, model.policy.selection, model.task)
    updating = updating_family(inputs, snapshot)
    if updating is not None:
        specs = beside_update(specs, updating)
    if len(specs) == 1 and not specs[0].search:
        return None
    data = selection_data(model.policy.selection, model.labels, snapshot, weights)
    if not data.folds:
        return Selection(
            model.family,
            dict(model.params),
            f"the model's own family: {len(data.texts)} training examples before the gate's evidence are too few "
            f"for {model.policy.selection.selection_blocks} forward-chaining blocks",
            [],
            0,
            0,
            update=updating is not None,
        )
    return choose(specs, data, model.policy.selection, study=study_place(inputs, snapshot), report=report)
