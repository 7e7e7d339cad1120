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
    def __init__(self, db: Database, clock: Clock, store: ArtifactStore | None = None) -> None:
        self.db = db
        self.clock = clock
        self.store = store  # where versions are loaded to answer the golden set; None: live feedback only

    def report(self, model: str, fields: list[str] | None = None, *, resamples: int = RESAMPLES) -> FairnessReport:
        """Every version's groups and gaps on the newest feedback and, where its rows carry the
        fields, on the golden set (module doc); ``fields`` instead of the policy's ``fairness_fields``."""
        with self.db.read() as conn:
            spec = model_repo.get_model(conn, model)
            if spec.task != "classification":
                raise WrongTaskError(
                    f"model {model!r} generates text: fairness figures (accuracy, selection and true-positive rates "
                    "per group) are defined for classification models",
                    field="model",
                )
            gate = spec.policy.gate
            events = feedback_repo.recent_feedback(conn, model, gate.fairness_window)
            versions = {v.version: v for v in model_repo.list_versions(conn, model)}
            champion = model_repo.get_deployment(conn, model).champion_version
            golden = _Golden(
                model_repo.load_examples(conn, model, GOLDEN),
                model_repo.load_example_metadata(conn, model, GOLDEN) if self.store is not None else [],
            )
        names = list(fields) if fields else list(gate.fairness)
        rows = labelled_rows(events, spec)
        with_attribute = golden.with_any(names)
        notes = []
        if not with_attribute:
            notes.append("the golden set's rows carry none of the fields: figures are on live feedback only")
        if not names:
            notes.append("no fields named: set policy fairness_fields (e.g. fairness_fields=region) or pass fields")

        def figures(truth: list[str], pred: list[str], metadata: list[dict[str, Any]]) -> list[FieldReport]:
            labels, min_n = list(spec.labels), gate.fairness_min_group
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

        numbers = {r.version for r in rows} | ({champion} if with_attribute and champion in versions else set())
        reports = []
        for number in sorted(numbers, reverse=True):
            mine = [r for r in rows if r.version == number]
            on_golden: list[FieldReport] = []
            if with_attribute:
                predicted = self._golden_answers(spec, versions[number], golden)
                on_golden = figures(golden.labels, predicted, golden.metadata_or_empty)
            version = versions.get(number)
            reports.append(
                VersionFairness(
                    version=number,
                    created_at=None if version is None else version.created_at,
                    n=len(mine),
                    first_at=mine[0].at if mine else None,
                    last_at=mine[-1].at if mine else None,
                    fields=figures([r.truth for r in mine], [r.predicted for r in mine], [r.metadata for r in mine]),
                    golden=on_golden,
                )
            )
        return FairnessReport(
            model=model,
            fields=names,
            window=len(events),
            labelled=len(rows),
            min_group=gate.fairness_min_group,
            confidence=CONFIDENCE,
            versions=reports,
            notes=notes,
            golden=len(golden.rows) if with_attribute else 0,
        )

    def _golden_answers(self, spec: Model, version: ModelVersion, golden: _Golden) -> list[str]:
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
