"""Fairness of a classifier's versions on live feedback (``GET /v1/models/{m}/fairness``,
``learnloop fairness``, the dashboard's fairness panel).

Rows: the newest ``fairness_window`` feedback events whose prediction is logged and whose
feedback names the true label (a label, thumbs or a rating on a binary task; one deciding
event per prediction, as curation picks it: ``tasks.classification.winning_events``), each
with the metadata of its prediction and of its feedback (``event_metadata``: the feedback's
keys over the prediction's). For each version that served such rows and each field of
``policy.fairness_fields``: per group accuracy, selection and true-positive rates, and the
gaps between groups with bootstrap intervals (``evaluation.fairness``).

The golden set holds text and label only (no group attributes), so it has no fairness
figures; the gate compares versions on every set whose rows carry the field (the recent
feedback). Feedback is not a random sample of traffic (people correct wrong answers more
often than they confirm right ones), so accuracy here reads low, alike for every group only if
every group gives feedback alike: compare versions, and read gaps with that in mind.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from learnloop.clock import Clock
from learnloop.domain import FeedbackEvent, Model
from learnloop.errors import WrongTaskError
from learnloop.evaluation.fairness import FieldReport, fairness_report, field_values
from learnloop.store.db import Database
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import models as model_repo
from learnloop.tasks.classification import implied_label, predicted_label
from learnloop.tasks.classification.labels import event_metadata, winning_events

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
    fields: list[FieldReport]


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
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def report(self, model: str, fields: list[str] | None = None, *, resamples: int = RESAMPLES) -> FairnessReport:
        """Every version's groups and gaps on the newest feedback (module doc); ``fields``
        instead of the policy's ``fairness_fields``."""
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
            created = {v.version: v.created_at for v in model_repo.list_versions(conn, model)}
        names = list(fields) if fields else list(gate.fairness)
        rows = labelled_rows(events, spec)
        notes = ["the golden set carries no group attributes: figures are on live feedback only"]
        if not names:
            notes.append("no fields named: set policy fairness_fields (e.g. fairness_fields=region) or pass fields")
        versions = []
        for version in sorted({r.version for r in rows}, reverse=True):
            mine = [r for r in rows if r.version == version]
            versions.append(
                VersionFairness(
                    version=version,
                    created_at=created.get(version),
                    n=len(mine),
                    first_at=mine[0].at,
                    last_at=mine[-1].at,
                    fields=[
                        fairness_report(
                            name,
                            [r.truth for r in mine],
                            [r.predicted for r in mine],
                            field_values([r.metadata for r in mine], name),
                            list(spec.labels),
                            min_n=gate.fairness_min_group,
                            resamples=resamples,
                            confidence=CONFIDENCE,
                            seed=SEED,
                        )
                        for name in names
                    ],
                )
            )
        return FairnessReport(
            model=model,
            fields=names,
            window=len(events),
            labelled=len(rows),
            min_group=gate.fairness_min_group,
            confidence=CONFIDENCE,
            versions=versions,
            notes=notes,
        )
