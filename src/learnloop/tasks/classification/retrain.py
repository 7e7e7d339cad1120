"""A classifier's retrain, in the training process, as named steps of typed inputs:

``curate`` (feedback -> weighted labelled examples -> a content-addressed snapshot with its
forward-chaining folds, written to the store) -> ``fit`` (the candidate, one model per fold, the
champion's predictions, the drift reference) -> ``evaluate`` (the candidate's metrics on each
set) -> ``judge`` (the gate's verdict against the champion, ``evaluation.gate``).

Everything here is compute on plain data (near-duplicate grouping, the noise filter's fits, the
candidate and fold fits), which is why it runs where the training runner puts it and not in a
server's request threads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from learnloop.artifacts import open_store
from learnloop.curation.grouping import Grouping, GroupingSettings, content_key
from learnloop.drift import reference as drift_reference
from learnloop.drift.multivariate import (
    MAX_REFERENCE_SAMPLE,
    MAX_WINDOW_SAMPLE,
    domain_classifier_test,
    sample_texts,
)
from learnloop.errors import ArtifactError, DataError, InsufficientDataError
from learnloop.evaluation import classification_metrics, latency_percentiles
from learnloop.evaluation.gate import GoldenDeparture, ScoredSet, compare_classifiers
from learnloop.families import get_family
from learnloop.selection.choose import Selection
from learnloop.tasks.base import Candidate, Report, RetrainInputs
from learnloop.tasks.classification.fit import FoldSpec, TrainResult, TrainSpec, fit_and_score
from learnloop.tasks.classification.labels import LabelledExample
from learnloop.tasks.classification.noise import ProbabilisticModel
from learnloop.tasks.classification.resolve import curate_feedback
from learnloop.tasks.classification.select import select
from learnloop.tasks.classification.snapshot import Snapshot, build_snapshot, fixed_grouping, snapshot_key

log = logging.getLogger(__name__)
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class _FamilyFit:
    """The model's family as the noise filter's ``FitFunction`` (its cross-validation fits)."""

    family: str
    params: dict[str, Any]
    labels: tuple[str, ...]

    def __call__(self, texts: Sequence[str], labels: Sequence[str], *, seed: int) -> ProbabilisticModel:
        return get_family(self.family).fit(texts, labels, label_set=list(self.labels), params=self.params, seed=seed)


def grouping_key(model: str) -> str:
    """Where a model's grouping of its golden and bootstrap texts is kept (``kept_grouping``)."""
    return f"models/{model}/grouping.npz"


def kept_grouping(inputs: RetrainInputs) -> Grouping:
    """The near-duplicate grouping of the model's golden then bootstrap texts, which do not
    change between retrains: read from the store when it was made of exactly these texts at
    this threshold, else made and stored (one per model, replaced: the rows of a grouping made
    of other rows, one erased since, do not stay)."""
    texts = [t for t, _ in inputs.golden] + [t for t, _ in inputs.bootstrap]
    threshold = inputs.model.policy.curation.dedup_threshold
    store = open_store(inputs.artifact_url)
    key = grouping_key(inputs.model.name)
    kept = None
    try:
        kept = Grouping.from_bytes(store.get_bytes(key), GroupingSettings(threshold=threshold))
    except ArtifactError as exc:
        if not isinstance(exc.__cause__, FileNotFoundError):  # missing: none kept yet, made below
            log.warning(
                "model %s: the kept grouping %s cannot be read (%s); grouping again", inputs.model.name, key, exc
            )
    except Exception as exc:  # a damaged file is made again
        log.warning("model %s: the kept grouping %s is unreadable (%r); grouping again", inputs.model.name, key, exc)
    if kept is not None and kept.key == content_key(texts, kept.settings):
        return kept
    grouping = fixed_grouping(texts, threshold)
    store.put_bytes(key, grouping.to_bytes())
    return grouping


def curate(inputs: RetrainInputs) -> Snapshot:
    """The snapshot the candidate trains and is judged on (see ``snapshot``); too little to
    train on is an ``InsufficientDataError`` (and nothing is written but the model's kept
    grouping, ``kept_grouping``)."""
    model, policy = inputs.model, inputs.model.policy
    golden_texts = [t for t, _ in inputs.golden]
    grouped = kept_grouping(inputs)
    if inputs.champion is None and not inputs.feedback:  # the first version: the model's own rows
        first = build_snapshot(
            bootstrap=inputs.bootstrap,
            feedback=[],
            golden_texts=golden_texts,
            champion_cutoff=None,
            cutoff=inputs.cutoff,
            policy=policy,
            grouped=grouped,
        )
        _check_every_label_trains(model.labels, first)
        return first
    curated = curate_feedback(
        inputs.feedback,
        model.labels,
        policy.curation,
        bootstrap=inputs.bootstrap,
        fit=_FamilyFit(model.family, model.params, model.labels),
    )
    snapshot = build_snapshot(
        bootstrap=inputs.bootstrap,
        feedback=curated.examples,
        golden_texts=golden_texts,
        champion_cutoff=inputs.champion_cutoff,
        cutoff=inputs.cutoff,
        policy=policy,
        feedback_counts=curated.feedback_counts,
        curation=curated.counts,
        grouped=grouped,
    )
    real = len(snapshot.train) - snapshot.counts.get("train_synthetic", 0)  # synthetic rows do not count
    if real < policy.curation.min_train_examples:
        raise InsufficientDataError(
            f"snapshot has {real} training examples; policy.min_train_examples is "
            f"{policy.curation.min_train_examples}. The champion is unchanged."
        )
    if len({ex.label for ex in snapshot.train}) < 2:
        raise InsufficientDataError("snapshot has a single label; the champion is unchanged")
    return snapshot


def _check_every_label_trains(labels: Sequence[str], snapshot: Snapshot) -> None:
    """Curation drops training texts that are near copies of golden ones; every label must keep one."""
    kept = {ex.label for ex in snapshot.train}
    lost = [label for label in labels if label not in kept]
    if lost:
        shown = ", ".join(repr(label) for label in lost[:5]) + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
        dropped = snapshot.counts.get("dropped_overlap_with_golden", 0)
        raise DataError(
            f"no training text is left for {shown} once the {dropped} near copies of golden-set texts are left out "
            "(punctuation and case aside); the data needs more distinct texts per label",
            field="data",
        )


def weights(snapshot: Snapshot, feedback_weight: float) -> list[float] | None:
    """Per-example training weights: ``feedback_weight`` times the weight curation gave the
    example (trust, noise filter) for feedback, 1 for bootstrap rows, a synthetic row its
    source's curation weight; ``None`` when all are 1."""
    found = [_weight(ex, feedback_weight) for ex in snapshot.train]
    return None if all(w == 1.0 for w in found) else found


def _weight(ex: LabelledExample, feedback_weight: float) -> float:
    if ex.source == "bootstrap":
        return 1.0
    return ex.weight if ex.source.startswith("synthetic") else feedback_weight * ex.weight


def fit(inputs: RetrainInputs, snapshot: Snapshot, chosen: Selection | None = None) -> TrainResult:
    """Fit the candidate (the model's family, or the one ``chosen``) on the snapshot and score
    it, and the champion, on the golden set and (by forward chaining) on the recent feedback."""
    model = inputs.model
    eval_sets = {"golden": [t for t, _ in inputs.golden]}
    if snapshot.recent or inputs.champion is not None:
        eval_sets["recent"] = [ex.text for ex in snapshot.recent]
    return fit_and_score(
        TrainSpec(
            family=model.family if chosen is None else chosen.family,
            params=model.params if chosen is None else chosen.params,
            label_set=list(model.labels),
            texts=[ex.text for ex in snapshot.train],
            labels=[ex.label for ex in snapshot.train],
            eval_sets=eval_sets,
            artifact_url=inputs.artifact_url,
            artifact_key=inputs.artifact_key,
            champion_uri=None if inputs.champion is None else inputs.champion.artifact_uri,
            continue_champion=continues_champion(inputs, chosen),
            manifest_extra={"model": model.name, "snapshot": snapshot.hash},
            folds=[FoldSpec(fold.train, fold.evaluate) for fold in snapshot.folds],
            weights=weights(snapshot, model.policy.curation.feedback_weight),
            drift_reference_key=drift_reference.reference_key(model.name, inputs.artifact_key),
        )
    )


def continues_champion(inputs: RetrainInputs, chosen: Selection | None) -> bool:
    """Whether the candidate may start from the champion: not when the champion learnt from
    data erased since (that data would live on in a version continued from it), nor when a
    fit from scratch was chosen over the champion's update."""
    if inputs.champion is not None and inputs.champion.erasures:
        return False
    return chosen is None or not chosen.refit_over_update


def truths(inputs: RetrainInputs, snapshot: Snapshot, result: TrainResult) -> dict[str, list[str]]:
    """The true labels of each set the candidate was scored on."""
    found = {"golden": [label for _, label in inputs.golden], "recent": [ex.label for ex in snapshot.recent]}
    return {name: labels for name, labels in found.items() if name in result.candidate}


def evaluate(inputs: RetrainInputs, snapshot: Snapshot, result: TrainResult) -> dict[str, Any]:
    """The candidate's metrics on each evaluation set (with bootstrap intervals), its
    ``predict_one`` latency and the data it was trained on."""
    model = inputs.model
    metrics: dict[str, Any] = {
        name: classification_metrics(
            truth,
            result.candidate[name],
            model.labels,
            result.candidate_proba[name],
            bootstrap=BOOTSTRAP_RESAMPLES,
            seed=BOOTSTRAP_SEED,
        )
        for name, truth in truths(inputs, snapshot, result).items()
    }
    metrics["latency"] = latency_percentiles(result.latency_ms)
    metrics["train_examples"] = len(snapshot.train)
    metrics["feedback_weight"] = model.policy.curation.feedback_weight
    metrics["snapshot_counts"] = snapshot.counts
    metrics[drift_reference.METRICS_KEY] = result.drift_reference_uri
    if result.drift_reference_error:
        metrics[drift_reference.METRICS_ERROR_KEY] = result.drift_reference_error
    if result.privacy is not None:  # the released weights' guarantee; fold models only scored the recent set
        metrics["privacy"] = {**result.privacy, "fold_models": len(snapshot.folds)}
    return metrics


def judge(
    inputs: RetrainInputs, snapshot: Snapshot, result: TrainResult, chosen: Selection | None = None
) -> dict[str, Any]:
    """The gate's verdict: paired against the champion on the same examples; a candidate of the
    champion's family and parameters is judged as a refresh (``evaluation.gate.recent_test``)."""
    champion = inputs.champion
    if champion is None or result.champion is None:
        return {"passed": True, "decision": "promote", "reasons": ["no champion to compare with"]}
    truth = truths(inputs, snapshot, result)
    family, params = (inputs.model.family, inputs.model.params) if chosen is None else (chosen.family, chosen.params)

    def scored(name: str, metadata: Sequence[Any] = ()) -> ScoredSet:
        assert result.champion is not None
        return ScoredSet(
            truth=truth.get(name, []),
            champion=result.champion.get(name, []),
            candidate=result.candidate.get(name, []),
            champion_proba=None if result.champion_proba is None else result.champion_proba.get(name),
            candidate_proba=result.candidate_proba.get(name),
            metadata=metadata,
        )

    verdict = compare_classifiers(
        scored("golden", inputs.golden_metadata),
        scored("recent", [ex.metadata for ex in snapshot.recent]),
        inputs.model.labels,
        inputs.model.policy,
        resamples=BOOTSTRAP_RESAMPLES,
        seed=BOOTSTRAP_SEED,
        refresh=family == champion.family
        and get_family(family).resolve_params(params) == get_family(family).resolve_params(champion.params),
        departure=golden_departure(inputs, snapshot),
    )
    return {**verdict, "champion_version": champion.version}


def golden_departure(inputs: RetrainInputs, snapshot: Snapshot) -> GoldenDeparture | None:
    """The golden set's texts tested against the recent feedback's (``evaluation.gate``); None
    when the policy turns the test off or either side has too few texts to judge a change."""
    gate = inputs.model.policy.gate
    golden = [text for text, _ in inputs.golden]
    recent = [ex.text for ex in snapshot.recent]
    if not gate.golden_traffic_check or len(golden) < 2 or len(recent) < max(2, gate.min_recent_examples):
        return None
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    found = domain_classifier_test(
        sample_texts(golden, MAX_REFERENCE_SAMPLE, rng),
        sample_texts(recent, MAX_WINDOW_SAMPLE, rng),
        seed=BOOTSTRAP_SEED,
    )
    return GoldenDeparture(found.auc, found.p_value, found.scored_reference, found.scored_window, gate.alpha)


def train(inputs: RetrainInputs, report: Report) -> Candidate:
    """The classification task's ``train``: curate -> fit -> evaluate -> judge."""
    snapshot = curate(inputs)
    report(0.2, f"curated: {len(snapshot.train)} training examples")
    weighed = weights(snapshot, inputs.model.policy.curation.feedback_weight)
    chosen = select(inputs, snapshot, weighed, lambda done, message: report(0.2 + 0.3 * done, message))
    report(0.5, "fitting" if chosen is None else f"chose {chosen.family}; fitting")
    result = fit(inputs, snapshot, chosen)
    report(0.9, f"fitted in {result.train_seconds:.1f}s; judging against the champion")
    first = inputs.champion is None and not inputs.feedback
    metrics = evaluate(inputs, snapshot, result)
    if chosen is not None:
        metrics["selection"] = chosen.to_dict()
    verdict = None if first else judge(inputs, snapshot, result, chosen)
    # Written last: a train that fails leaves only the artifacts under ``inputs.artifact_key``.
    stored = open_store(inputs.artifact_url).put_bytes(
        snapshot_key(inputs.model.name, snapshot.hash), snapshot.to_jsonl_gz()
    )
    return Candidate(
        artifact_key=result.artifact_uri,
        snapshot_hash=snapshot.hash,
        snapshot_key=stored,
        snapshot_counts=snapshot.counts,
        snapshot_cutoff=snapshot.cutoff,
        metrics=metrics,
        verdict=verdict,
        train_seconds=result.train_seconds,
        family=None if chosen is None else chosen.family,
        params=None if chosen is None else chosen.params,
        notes=[
            f"snapshot {snapshot.hash[:12]}: {snapshot.counts['train']} train; {len(snapshot.folds)} "
            f"forward-chaining folds over {len(snapshot.recent)} recent events",
            f"trained in {result.train_seconds:.1f}s",
            *([] if chosen is None else [f"chose {chosen.family}: {chosen.reason}"]),
        ],
    )
