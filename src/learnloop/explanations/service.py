"""Explanations as use cases: a logged answer explained by the version that gave it, a text
explained by the champion (or a named version), a version's strongest terms per label, and the
terms whose weight moved between two versions (``families.explanation`` does the arithmetic).

A version other than the champion is loaded from its artifact and kept (the newest
``LOADED_VERSIONS``), so a page that explains a few answers of an old version loads it once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from learnloop.artifacts import ArtifactStore
from learnloop.config import Limits
from learnloop.domain import Model, ModelVersion
from learnloop.errors import NotFoundError, WrongTaskError
from learnloop.families import Predictor
from learnloop.families.explanation import (
    Explanation,
    TermWeight,
    TermWeights,
    WeightChange,
    explain,
    term_weights,
    top_terms,
    weight_changes,
)
from learnloop.families.manifest import load_predictor
from learnloop.feedback.intake import canonical_prediction_id, check_text
from learnloop.routing.cache import ModelCache
from learnloop.store.db import Database
from learnloop.store.repositories import models as model_repo
from learnloop.store.repositories import predictions as prediction_repo

LOADED_VERSIONS = 4
MAX_TOP = 500


@dataclass(frozen=True)
class ExplainedAnswer:
    model: str
    version: int
    family: str
    text: str
    explanation: Explanation
    prediction_id: str | None = None  # a logged answer's
    served_label: str | None = None  # what the logged answer said


@dataclass(frozen=True)
class VersionWeights:
    model: str
    version: int
    family: str
    terms: int  # terms the version weighs
    top: dict[str, list[TermWeight]]  # per label, the terms that push hardest towards it


@dataclass(frozen=True)
class WeightsDiff:
    model: str
    a: int
    b: int
    changes: dict[str, tuple[list[WeightChange], list[WeightChange]]]  # per label: (gained, lost) from a to b
    new_terms: int  # terms b weighs that a did not
    dropped_terms: int  # terms a weighed that b does not


class ExplanationService:
    def __init__(self, db: Database, store: ArtifactStore, cache: ModelCache, limits: Limits) -> None:
        self.db = db
        self.store = store
        self.cache = cache
        self.limits = limits
        self._loaded: OrderedDict[tuple[str, int, str], Predictor] = OrderedDict()
        self._weights: OrderedDict[tuple[str, int, str], TermWeights] = OrderedDict()
        self._lock = threading.Lock()

    def explain_text(self, model: str, text: str, version: int | None = None) -> ExplainedAnswer:
        """``text`` as the champion (or ``version``) answers it, with the terms behind it."""
        check_text(text, self.limits.max_text_chars)
        spec, v = self._version(model, version)
        return ExplainedAnswer(model, v.version, v.family, text, explain(self._predictor(spec, v), text))

    def explain_prediction(self, model: str, prediction_id: str) -> ExplainedAnswer:
        """A logged answer explained by the version that gave it."""
        key = canonical_prediction_id(prediction_id)
        with self.db.read() as conn:
            found = prediction_repo.get_prediction(conn, key)
        if found is None or found.model != model:
            raise NotFoundError(
                f"prediction {prediction_id!r} of model {model!r} not found (or not logged yet)", field="prediction_id"
            )
        spec, v = self._version(model, found.version)
        explanation = explain(self._predictor(spec, v), found.text)
        served = found.answer.get("label")
        return ExplainedAnswer(
            model, v.version, v.family, found.text, explanation, found.id, None if served is None else str(served)
        )

    def weights(self, model: str, version: int | None = None, top: int = 20) -> VersionWeights:
        """The champion's (or ``version``'s) ``top`` strongest terms per label."""
        spec, v = self._version(model, version)
        weights = self._term_weights(spec, v)
        return VersionWeights(model, v.version, v.family, len(weights.terms), top_terms(weights, _bounded(top)))

    def changes(self, model: str, a: int, b: int, top: int = 20) -> WeightsDiff:
        """Per label, the ``top`` terms that gained most weight from version ``a`` to ``b``, and
        the ``top`` that lost most."""
        weights: list[TermWeights] = []
        for number in (a, b):
            spec, v = self._version(model, number)
            weights.append(self._term_weights(spec, v))
        before, after = set(weights[0].terms), set(weights[1].terms)
        return WeightsDiff(
            model,
            a,
            b,
            weight_changes(weights[0], weights[1], _bounded(top)),
            new_terms=len(after - before),
            dropped_terms=len(before - after),
        )

    def _version(self, model: str, version: int | None) -> tuple[Model, ModelVersion]:
        with self.db.read() as conn:
            spec = model_repo.get_model(conn, model)
            if spec.task != "classification":
                raise WrongTaskError(f"model {model!r} generates text: explanations are for classifiers")
            if version is None:
                champion = model_repo.get_deployment(conn, model).champion_version
                if champion is None:
                    raise NotFoundError(f"model {model!r} has no champion", field="model")
                version = champion
            found = model_repo.get_version(conn, model, version)
        found.check_artifact()  # 409 artifact_removed: a version the retention policy pruned
        return spec, found

    def _term_weights(self, spec: Model, v: ModelVersion) -> TermWeights:
        """A version's weights, kept like its predictor (a version never changes)."""
        return _kept(
            self._weights,
            self._lock,
            (spec.name, v.version, v.artifact_uri),
            lambda: term_weights(self._predictor(spec, v)),
        )

    def _predictor(self, spec: Model, v: ModelVersion) -> Predictor:
        """The version's predictor: the one serving it in this process, else loaded and kept."""
        route = self.cache.route(spec.name) if spec.name in self.cache.model_names() else None
        if route is not None:
            for held in (route.champion, route.previous):
                if held is not None and held.version == v.version and held.predictor is not None:
                    return held.predictor
        return _kept(
            self._loaded,
            self._lock,
            (spec.name, v.version, v.artifact_uri),
            lambda: load_predictor(self.store, v.artifact_uri),
        )


T = TypeVar("T")


def _kept(
    kept: OrderedDict[tuple[str, int, str], T], lock: threading.Lock, key: tuple[str, int, str], make: Callable[[], T]
) -> T:
    """``kept[key]``, made (outside the lock) when missing; the newest ``LOADED_VERSIONS`` stay."""
    with lock:
        found = kept.get(key)
        if found is not None:
            kept.move_to_end(key)
            return found
    made = make()
    with lock:
        kept[key] = made
        while len(kept) > LOADED_VERSIONS:
            kept.popitem(last=False)
    return made


def _bounded(top: int) -> int:
    return min(max(top, 1), MAX_TOP)
