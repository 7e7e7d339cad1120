"""Fairness of a classifier's versions on live feedback (``GET /v1/models/{m}/fairness``,
``learnloop fairness``, the dashboard's fairness panel).

Rows: the newest ``fairness_window`` feedback events whose prediction is logged and whose
feedback names the true label (a label, thumbs or a rating on a binary task; one deciding
event per prediction, as curation picks it: ``tasks.classification.winning_events``), each
with the metadata of its prediction and of its feedback (``event_metadata``: the feedback's
keys over the prediction's). For each version that served such rows and each field of
``policy.fairness_fields``: per group accuracy, selection and true-positive rates, and the
gaps between groups with bootstrap intervals (``evaluation.fairness``).

On the golden set too, where its rows carry the fields (a ``metadata`` column in the data a
model was created from): each version listed (and the champion) answers the golden texts, and
the same figures are computed on them (``VersionFairness.golden``); the gate compares a
candidate with its champion on both sets alike.

Feedback is not a random sample of traffic (people correct wrong answers more often than they
confirm right ones), so accuracy on it reads low, alike for every group only if every group
gives feedback alike: compare versions, and read gaps with that in mind.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from learnloop.artifacts import ArtifactStore
from learnloop.clock import Clock
from learnloop.domain import FeedbackEvent, Model, ModelVersion
from learnloop.errors import WrongTaskError
from learnloop.evaluation.fairness import FieldReport, fairness_report, field_values
from learnloop.families.manifest import load_predictor
from learnloop.store.db import Database
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import models as model_repo
from learnloop.tasks.classification import implied_label, predicted_label
from learnloop.tasks.classification.labels import event_metadata, winning_events

GOLDEN = "golden"
CACHE = 32
RESAMPLES = 1000
CONFIDENCE = 0.95
SEED = 0


@dataclass(frozen=True)
class VersionFairness:
    version: int
    created_at: datetime | None
    n: int  # labelled answers of this version in the window
    first_at: datetime | None  # the oldest and newest of those answers
    last_at: datetime | None
    fields: list[FieldReport]  # on the labelled feedback it answered
    golden: list[FieldReport] = field(default_factory=list)  # on the golden set; [] when its rows lack the fields
    # The retention policy removed its artifact: it cannot answer the golden set (``golden`` is
    # []); its figures on the feedback it served stay.
    artifact_removed: bool = False


@dataclass(frozen=True)
class FairnessReport:
    model: str
    fields: list[str]
    window: int  # feedback events read
    labelled: int  # of them, labelled answers (all versions)
    min_group: int
    confidence: float
    versions: list[VersionFairness]  # newest version first
    notes: list[str]
    golden: int = 0  # golden rows the versions answered (0: its rows carry none of the fields)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Row:
    version: int
    truth: str
    predicted: str
    metadata: dict[str, Any]
    at: datetime


def labelled_rows(events: list[FeedbackEvent], model: Model) -> list[_Row]:
    """One row per logged answer whose true label the feedback names (oldest first)."""
    winners, _ = winning_events(sorted(events, key=lambda e: (e.created_at, e.id)))
    rows = []
    for event in winners:
        if event.served is None:
            continue
        truth, outcome = implied_label(event, model.labels)
        predicted = predicted_label(event)
        if outcome != "labelled" or truth is None or predicted is None:
            continue
        meta = event_metadata(event)
        rows.append(_Row(event.served.version, truth, predicted, dict(meta or {}), event.created_at))
    return rows


class FairnessService:
    """Fairness reports, each computed once for what it reads: a report is kept (the newest
    ``CACHE`` of them) under a digest of everything its figures depend on (the labelled rows
    with their versions, answers and metadata, the versions' artifacts, the golden rows, the
    fields, the policy's minimum group and the resamples), so a page drawn again, or the same
    question asked twice, costs a read and no bootstrap; a new label, a joined answer or a new
    version changes the digest."""

    def __init__(self, db: Database, clock: Clock, store: ArtifactStore | None = None) -> None:
        self.db = db
        self.clock = clock
        self.store = store  # where versions are loaded to answer the golden set; None: live feedback only
        self.computed = 0  # reports computed, not served from the cache
        self._cache: OrderedDict[str, FairnessReport] = OrderedDict()
        self._lock = threading.Lock()

    def report(self, model: str, fields: list[str] | None = None, *, resamples: int = RESAMPLES) -> FairnessReport:
        """Every version's groups and gaps on the newest feedback and, where its rows carry the
        fields, on the golden set (module doc); ``fields`` instead of the policy's ``fairness_fields``."""
        inputs = self._read(model, fields)
        key = inputs.digest(resamples)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        made = self._compute(inputs, resamples)
        with self._lock:
            self.computed += 1
            self._cache[key] = made
            while len(self._cache) > CACHE:
                self._cache.popitem(last=False)
        return made

    def _read(self, model: str, fields: list[str] | None) -> _Inputs:
        with self.db.read() as conn:
            spec = model_repo.get_model(conn, model)
            if spec.task != "classification":
                raise WrongTaskError(
                    f"model {model!r} generates text: fairness figures (accuracy, selection and true-positive rates "
                    "per group) are defined for classification models",
                    field="model",
                )
            events = feedback_repo.recent_feedback(conn, model, spec.policy.gate.fairness_window)
            versions = {v.version: v for v in model_repo.list_versions(conn, model)}
            champion = model_repo.get_deployment(conn, model).champion_version
            golden_metadata = model_repo.load_example_metadata(conn, model, GOLDEN) if self.store is not None else []
            golden = _Golden(model_repo.load_examples(conn, model, GOLDEN) if golden_metadata else [], golden_metadata)
        names = list(fields) if fields else list(spec.policy.gate.fairness)
        rows = labelled_rows(events, spec)
        if not golden.with_any(names):
            golden = _Golden([], [])
        listed = {r.version for r in rows} | ({champion} if golden.rows and champion in versions else set())
        return _Inputs(spec, names, len(events), rows, versions, sorted(listed, reverse=True), golden)

    def _compute(self, inputs: _Inputs, resamples: int) -> FairnessReport:
        spec, names, golden = inputs.spec, inputs.names, inputs.golden
        labels, min_n = list(spec.labels), spec.policy.gate.fairness_min_group

        def figures(truth: list[str], pred: list[str], metadata: list[dict[str, Any]]) -> list[FieldReport]:
            return [
                fairness_report(
                    name,
                    truth,
                    pred,
                    field_values(metadata, name),
                    labels,
                    min_n=min_n,
                    resamples=resamples,
                    confidence=CONFIDENCE,
                    seed=SEED,
                )
                for name in names
            ]

        reports, removed = [], []
        for number in inputs.listed:
            mine = [r for r in inputs.rows if r.version == number]
            version = inputs.versions.get(number)
            pruned = version is not None and version.artifacts_pruned_at is not None
            if pruned and golden.rows:
                removed.append(number)
            on_golden: list[FieldReport] = []
            if golden.rows and version is not None and not pruned:
                on_golden = figures(golden.labels, self._golden_answers(version, golden), golden.metadata_or_empty)
            reports.append(
                VersionFairness(
                    version=number,
                    created_at=None if version is None else version.created_at,
                    n=len(mine),
                    first_at=mine[0].at if mine else None,
                    last_at=mine[-1].at if mine else None,
                    fields=figures([r.truth for r in mine], [r.predicted for r in mine], [r.metadata for r in mine]),
                    golden=on_golden,
                    artifact_removed=pruned,
                )
            )
        notes = [] if golden.rows else ["the golden set's rows carry none of the fields: figures are on live feedback"]
        if removed:
            listed = ", ".join(f"v{n}" for n in sorted(removed))
            notes.append(
                f"no golden-set figures for {listed}: the retention policy removed their artifacts "
                "(their figures on live feedback stay)"
            )
        if not names:
            notes.append("no fields named: set policy fairness_fields (e.g. fairness_fields=region) or pass fields")
        return FairnessReport(
            model=spec.name,
            fields=names,
            window=inputs.window,
            labelled=len(inputs.rows),
            min_group=min_n,
            confidence=CONFIDENCE,
            versions=reports,
            notes=notes,
            golden=len(golden.rows),
        )

    def _golden_answers(self, version: ModelVersion, golden: _Golden) -> list[str]:
        """``version``'s answers to the golden texts (the artifact loaded from the store)."""
        assert self.store is not None
        predictor = load_predictor(self.store, version.artifact_uri)
        proba = predictor.predict_proba([text for text, _ in golden.rows])
        return [predictor.labels[i] for i in proba.argmax(axis=1)]


@dataclass(frozen=True)
class _Golden:
    rows: list[tuple[str, str]]
    metadata: list[dict[str, Any] | None]  # aligned with rows; [] when no row has any

    @property
    def labels(self) -> list[str]:
        return [label for _, label in self.rows]

    @property
    def metadata_or_empty(self) -> list[dict[str, Any]]:
        return [meta or {} for meta in self.metadata]

    def with_any(self, names: list[str]) -> bool:
        """Whether some golden row has one of the fields."""
        return any(meta and any(name in meta for name in names) for meta in self.metadata)


@dataclass(frozen=True)
class _Inputs:
    """What a report is computed from, as read."""

    spec: Model
    names: list[str]
    window: int  # feedback events read
    rows: list[_Row]
    versions: dict[int, ModelVersion]
    listed: list[int]  # the versions reported, newest first
    golden: _Golden  # empty when its rows carry none of the fields

    def digest(self, resamples: int) -> str:
        """A digest of everything the report's figures depend on (its cache key)."""
        listed = [self.versions.get(n) for n in self.listed]
        parts = [
            self.spec.name, list(self.spec.labels), self.spec.policy.gate.fairness_min_group, self.names, resamples,
            self.window, self.listed,
            [(v.artifact_uri, v.created_at, v.artifacts_pruned_at) for v in listed if v is not None],
            [(r.version, r.truth, r.predicted, r.metadata, r.at) for r in self.rows],
            self.golden.rows, self.golden.metadata,
        ]  # fmt: skip
        text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()
