"""Versions read side by side, on the model's golden set.

* ``report(model, version)``: the version scored now on the golden set: its metrics (with the
  confusion matrix), ROC curves and reliability bins (``evaluation.curves``).
* ``compare(model, a, b)``: both versions scored on the same golden examples, compared paired
  as the gate compares a candidate with its champion (``evaluation.gate.paired_comparison``:
  McNemar's exact tests and the Agresti-Min interval of the accuracy difference;
  ``paired_metric_differences``: paired bootstrap intervals of macro-F1, ROC AUC, log loss,
  Brier and ECE), with what changed in their parameters and how their lineages meet.

Versions are immutable and so is the golden set once made: each version's scores are kept
(the newest ``SCORE_CACHE`` of them, under its artifact and the golden set's content, so a
model deleted and made again under its name is scored afresh), so a page drawn twice scores
once. Only classifiers have
these plots; a generative model's versions are refused with a clear error, and so is a version
whose artifact the retention policy removed (409 ``artifact_removed``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from learnloop.artifacts import ArtifactStore
from learnloop.domain import Model, ModelVersion
from learnloop.errors import ValidationError, WrongTaskError
from learnloop.evaluation import classification_metrics, paired_comparison, paired_metric_differences
from learnloop.evaluation.bootstrap import FloatArray
from learnloop.evaluation.curves import ReliabilityBin, RocCurve, reliability_bins, roc_curves
from learnloop.evaluation.gate import PairedComparison
from learnloop.families.manifest import load_predictor
from learnloop.store.db import Database
from learnloop.store.repositories import models as model_repo

SET_NAME = "golden"
SCORE_CACHE = 16
RESAMPLES = 1000
SEED = 0
CONFIDENCE = 0.95


@dataclass(frozen=True)
class _Scores:
    truth: list[str]
    proba: FloatArray  # columns in the model's label order

    def predicted(self, labels: Sequence[str]) -> list[str]:
        return [labels[i] for i in self.proba.argmax(axis=1)] if len(self.truth) else []

    def truth_index(self, labels: Sequence[str]) -> Any:
        index = {label: i for i, label in enumerate(labels)}
        return np.fromiter((index[t] for t in self.truth), dtype=np.intp, count=len(self.truth))


@dataclass(frozen=True)
class VersionReport:
    model: Model
    version: ModelVersion
    set_name: str
    n: int
    metrics: dict[str, Any]  # ``classification_metrics``, with ``confusion_matrix``
    roc: list[RocCurve]
    reliability: list[ReliabilityBin]


@dataclass(frozen=True)
class ParamChange:
    key: str
    a: Any
    b: Any


@dataclass(frozen=True)
class VersionComparison:
    model: Model
    a: ModelVersion
    b: ModelVersion
    set_name: str
    n: int
    accuracy: PairedComparison | None  # b - a
    metrics: dict[str, dict[str, Any]]  # b - a per metric, paired bootstrap interval
    params: list[ParamChange]  # keys whose values differ (family included)
    lineage_a: list[int]  # a, its parent, ... up to the first version both descend from
    lineage_b: list[int]
    common_ancestor: int | None
    reports: tuple[VersionReport, VersionReport]


class VersionReports:
    def __init__(self, db: Database, store: ArtifactStore) -> None:
        self.db = db
        self.store = store
        self._scores: OrderedDict[tuple[str, int, str | None, int], _Scores] = OrderedDict()
        self._lock = threading.Lock()

    def report(self, model: str, version: int) -> VersionReport:
        spec, v, golden = self._read(model, version)
        return self._report(spec, v, self._scored(spec, v, golden))

    def compare(self, model: str, a: int, b: int) -> VersionComparison:
        if a == b:
            raise ValidationError("compare two different versions", field="b")
        spec, va, golden = self._read(model, a)
        with self.db.read() as conn:
            vb = model_repo.get_version(conn, model, b)
            versions = {v.version: v for v in model_repo.list_versions(conn, model)}
        vb.check_artifact()  # both refused before either is scored
        sa, sb = self._scored(spec, va, golden), self._scored(spec, vb, golden)
        labels = list(spec.labels)
        accuracy = (
            paired_comparison(SET_NAME, sa.truth, sa.predicted(labels), sb.predicted(labels), confidence=CONFIDENCE)
            if sa.truth
            else None
        )
        metrics = paired_metric_differences(
            sa.truth, sa.proba, sb.proba, labels, resamples=RESAMPLES, confidence=CONFIDENCE, seed=SEED
        )
        lineage_a, lineage_b, common = lineages(versions, a, b)
        return VersionComparison(
            model=spec,
            a=va,
            b=vb,
            set_name=SET_NAME,
            n=len(sa.truth),
            accuracy=accuracy,
            metrics={k: {**d, "a": d.pop("champion"), "b": d.pop("candidate")} for k, d in metrics.items()},
            params=param_changes(va, vb),
            lineage_a=lineage_a,
            lineage_b=lineage_b,
            common_ancestor=common,
            reports=(self._report(spec, va, sa), self._report(spec, vb, sb)),
        )

    # -- parts ------------------------------------------------------------------------------------

    def _read(self, model: str, version: int) -> tuple[Model, ModelVersion, list[tuple[str, str]]]:
        with self.db.read() as conn:
            spec = model_repo.get_model(conn, model)
            v = model_repo.get_version(conn, model, version)
            if spec.task != "classification":
                raise WrongTaskError(
                    f"model {model!r} is a {spec.task} model: version plots and comparisons are drawn for classifiers"
                )
            golden = model_repo.load_examples(conn, model, SET_NAME)
        v.check_artifact()  # 409 artifact_removed: a version the retention policy pruned cannot be scored
        if not golden:
            raise ValidationError(f"model {model!r} has no golden set to score its versions on", field="model")
        return spec, v, golden

    def _report(self, spec: Model, v: ModelVersion, scores: _Scores) -> VersionReport:
        labels = list(spec.labels)
        truth = scores.truth_index(labels)
        return VersionReport(
            model=spec,
            version=v,
            set_name=SET_NAME,
            n=len(scores.truth),
            metrics=classification_metrics(scores.truth, scores.predicted(labels), labels, scores.proba),
            roc=roc_curves(truth, scores.proba, labels),
            reliability=reliability_bins(truth, scores.proba),
        )

    def _scored(self, spec: Model, v: ModelVersion, golden: list[tuple[str, str]]) -> _Scores:
        key = (spec.name, v.version, v.artifact_uri, hash(tuple(golden)))
        with self._lock:
            found = self._scores.get(key)
            if found is not None:
                self._scores.move_to_end(key)
                return found
        predictor = load_predictor(self.store, v.artifact_uri)
        proba = np.asarray(predictor.predict_proba([text for text, _ in golden]), dtype=np.float64)
        column = {label: i for i, label in enumerate(predictor.labels)}
        missing = [label for label in spec.labels if label not in column]
        if missing:
            raise ValidationError(f"version {v.version} does not know the labels {missing}", field="version")
        scores = _Scores([label for _, label in golden], proba[:, [column[label] for label in spec.labels]])
        with self._lock:
            self._scores[key] = scores
            while len(self._scores) > SCORE_CACHE:
                self._scores.popitem(last=False)
        return scores


def param_changes(a: ModelVersion, b: ModelVersion) -> list[ParamChange]:
    """The family and every parameter whose value differs (a missing key reads None)."""
    out = [ParamChange("family", a.family, b.family)] if a.family != b.family else []
    for key in sorted(set(a.params) | set(b.params)):
        if a.params.get(key) != b.params.get(key):
            out.append(ParamChange(key, a.params.get(key), b.params.get(key)))
    return out


def lineages(versions: dict[int, ModelVersion], a: int, b: int) -> tuple[list[int], list[int], int | None]:
    """Each version's chain of parents up to the first version both chains hold (included),
    or to its root when they never meet."""

    def chain(start: int) -> list[int]:
        out, seen = [start], {start}
        parent = versions[start].parent_version if start in versions else None
        while parent is not None and parent not in seen:
            out.append(parent)
            seen.add(parent)
            parent = versions[parent].parent_version if parent in versions else None
        return out

    chain_a, chain_b = chain(a), chain(b)
    common = next((v for v in chain_a if v in chain_b), None)
    if common is None:
        return chain_a, chain_b, None
    return chain_a[: chain_a.index(common) + 1], chain_b[: chain_b.index(common) + 1], common
