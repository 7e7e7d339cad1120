"""Fit one candidate and score it (and the champion) on the evaluation sets: predicted labels
and probabilities per set, and the candidate's ``predict_one`` latency on the first texts of
one set (measured here, beside the fit: indicative, not a serving benchmark).

``fit_and_score`` takes a plain, picklable ``TrainSpec`` so it runs the same in this
process (``learnloop init``) or in a child process (the worker), where a long fit cannot
stall the server's request handling.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from learnloop.artifacts import ArtifactStore, open_store
from learnloop.drift.reference import fit_reference
from learnloop.families import get_family
from learnloop.families.base import FloatArray, Predictor, PrivacyAccounted, SubsetFitting
from learnloop.families.manifest import load_predictor, save_predictor


@dataclass(frozen=True)
class TrainSpec:
    family: str
    params: dict[str, Any]
    label_set: list[str]
    texts: list[str]
    labels: list[str]
    eval_sets: dict[str, list[str]]  # name -> texts (labels stay with the caller)
    artifact_url: str  # the store, opened here from its URL (settings.artifact_url)
    artifact_key: str
    champion_uri: str | None = None
    # Whether the candidate may start from the champion (``ModelFamily.fit``'s ``previous``):
    # not when the champion learnt from data erased since (it would carry that data on).
    continue_champion: bool = True
    seed: int = 0
    manifest_extra: dict[str, Any] = field(default_factory=dict)
    latency_set: str = "golden"  # eval set whose first texts time the candidate's predict_one
    latency_samples: int = 200
    # Forward chaining (see ``curation.snapshot``): for the eval set ``folds_set``, the
    # candidate's predictions come from one model per fold, fitted on ``texts[i] for i in
    # fold.train`` and scored on ``fold.evaluate``; ``eval_sets[folds_set]`` is their texts.
    folds: list[FoldSpec] = field(default_factory=list)
    folds_set: str = "recent"
    weights: list[float] | None = None  # per training text; None: all 1
    # Where to store the candidate's drift reference (fitted on ``eval_sets[drift_reference_set]``
    # with the candidate's probabilities; see ``drift.reference``); None: no reference.
    drift_reference_key: str | None = None
    drift_reference_set: str = "golden"


@dataclass(frozen=True)
class FoldSpec:
    train: list[int]  # indices into TrainSpec.texts
    evaluate: list[int]  # indices into TrainSpec.texts


@dataclass(frozen=True)
class TrainResult:
    artifact_uri: str
    train_seconds: float
    candidate: dict[str, list[str]]  # eval set -> predicted labels
    champion: dict[str, list[str]] | None
    # eval set -> probabilities, one row per text, columns in ``TrainSpec.label_set`` order
    candidate_proba: dict[str, FloatArray] = field(default_factory=dict)
    champion_proba: dict[str, FloatArray] | None = None
    latency_ms: list[float] = field(default_factory=list)  # candidate's predict_one, one per text
    drift_reference_uri: str | None = None
    drift_reference_error: str | None = None  # why there is no reference (it never fails a fit)
    privacy: dict[str, Any] | None = None  # the candidate's guarantee (``PrivacyAccounted``); None: none


def predict_labels(predictor: Predictor, texts: list[str], label_set: list[str]) -> tuple[list[str], FloatArray]:
    """Predicted labels and probabilities with columns in ``label_set`` order (a label the
    predictor does not know gets probability 0)."""
    proba = np.zeros((len(texts), len(label_set)))
    if texts:
        raw = predictor.predict_proba(texts)
        for column, label in enumerate(predictor.labels):
            if label in label_set:
                proba[:, label_set.index(label)] = raw[:, column]
    return [label_set[i] for i in proba.argmax(axis=1)], proba


def _predict_one_latency_ms(predictor: Predictor, texts: list[str]) -> list[float]:
    """Milliseconds per ``predict_one`` call, one text at a time, after one untimed call."""
    if texts:
        predictor.predict_one(texts[0])
    timings = []
    for text in texts:
        started = time.perf_counter()
        predictor.predict_one(text)
        timings.append(1000 * (time.perf_counter() - started))
    return timings


def _fits(family: Any, spec: TrainSpec, previous: Predictor | None) -> Iterator[Predictor]:
    """The candidate (every training text), then one model per fold (its ``train`` rows):
    through the family's ``fit_many`` where it has one (work shared between the fits)."""
    subsets: list[list[int] | None] = [None, *(fold.train for fold in spec.folds)]
    common: dict[str, Any] = {"label_set": spec.label_set, "params": spec.params, "seed": spec.seed}
    if isinstance(family, SubsetFitting):
        yield from family.fit_many(
            spec.texts, spec.labels, subsets=subsets, sample_weight=spec.weights, previous=previous, **common
        )
        return
    for rows in subsets:
        if rows is None:
            yield family.fit(spec.texts, spec.labels, sample_weight=spec.weights, previous=previous, **common)
            continue
        yield family.fit(
            [spec.texts[i] for i in rows],
            [spec.labels[i] for i in rows],
            sample_weight=None if spec.weights is None else [spec.weights[i] for i in rows],
            previous=previous,
            **common,
        )


def _forward_chained(spec: TrainSpec, fold_models: Iterator[Predictor]) -> tuple[list[str], FloatArray]:
    """Predictions on each fold's block by a model fitted only on what came before it (and the
    champion, which the retrain's folds all come after)."""
    labels: list[str] = []
    probas: list[FloatArray] = []
    for fold, model in zip(spec.folds, fold_models, strict=True):
        fold_labels, fold_proba = predict_labels(model, [spec.texts[i] for i in fold.evaluate], spec.label_set)
        labels += fold_labels
        probas.append(fold_proba)
    return labels, np.vstack(probas)


def fit_and_score(spec: TrainSpec) -> TrainResult:
    store = open_store(spec.artifact_url)
    family = get_family(spec.family)
    # The champion is loaded first: a family may start from it (``ModelFamily.fit``'s ``previous``).
    old = None if spec.champion_uri is None else load_predictor(store, spec.champion_uri)
    previous = old if spec.continue_champion else None
    started = time.perf_counter()
    fits = _fits(family, spec, previous)
    predictor = next(fits)
    train_seconds = time.perf_counter() - started
    uri = save_predictor(store, spec.artifact_key, spec.family, predictor, spec.manifest_extra)
    candidate = {
        name: predict_labels(predictor, texts, spec.label_set)
        for name, texts in spec.eval_sets.items()
        if not (spec.folds and name == spec.folds_set)  # the final model trained on those
    }
    if spec.folds:
        candidate[spec.folds_set] = _forward_chained(spec, fits)
    drift_uri, drift_error = _drift_reference(store, spec, predictor, candidate)
    latency_ms = _predict_one_latency_ms(predictor, spec.eval_sets.get(spec.latency_set, [])[: spec.latency_samples])
    champion = None
    if old is not None:
        champion = {name: predict_labels(old, texts, spec.label_set) for name, texts in spec.eval_sets.items()}
    return TrainResult(
        uri,
        train_seconds,
        candidate={name: labels for name, (labels, _) in candidate.items()},
        champion={name: labels for name, (labels, _) in champion.items()} if champion is not None else None,
        candidate_proba={name: proba for name, (_, proba) in candidate.items()},
        champion_proba={name: proba for name, (_, proba) in champion.items()} if champion is not None else None,
        latency_ms=latency_ms,
        drift_reference_uri=drift_uri,
        drift_reference_error=drift_error,
        privacy=dict(predictor.privacy) if isinstance(predictor, PrivacyAccounted) else None,
    )


def _drift_reference(
    store: ArtifactStore, spec: TrainSpec, predictor: Predictor, candidate: dict[str, tuple[list[str], FloatArray]]
) -> tuple[str | None, str | None]:
    """Fit and store the candidate's drift reference: (its URI, None) or (None, why not)."""
    if spec.drift_reference_key is None:
        return None, None
    name = spec.drift_reference_set
    texts = spec.eval_sets.get(name, [])
    if not texts or name not in candidate:
        return None, f"no {name} texts to fit a drift reference on"
    try:
        reference = fit_reference(predictor, texts, candidate[name][1], spec.label_set, source=name)
    except Exception as exc:  # monitoring never fails a training
        return None, f"the drift reference could not be fitted: {type(exc).__name__}: {exc}"
    return store.put_bytes(spec.drift_reference_key, reference.to_bytes()), None
