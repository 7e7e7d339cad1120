"""Export and erase everything learnloop holds about one subject (a user).

Subjects are stored hashed (``feedback.intake.hash_subject``); callers name the subject as
their own system knows it, and learnloop hashes it the same way to find its rows.

**Export** returns, across every model, the subject's predictions (what they sent, what was
answered) and feedback events, as JSON-ready dicts.

**Erase** removes the subject from everything learnloop stores, in this order, so that a
failure half-way can be retried and never loses track of what is left to erase:

1. *snapshots*: every stored snapshot row that came from the subject's feedback (or from
   feedback on the subject's predictions) is dropped from the snapshot file, which is
   rewritten in place; the snapshot keeps its id and records the erasure in its counts (its
   content no longer matches its hash, by design: the hash names what the version saw);
2. in one transaction: the subject's predictions, the feedback on them and the subject's own
   feedback, and shadow answers to those predictions, are deleted; every version trained on
   an affected snapshot is marked (``ModelVersion.erasures``); a ``subject_erased`` event records
   what was removed (counts, versions, a prefix of the subject's hash; never the subject);
3. each model with versions trained on the subject's data is reported as a ``Finding``;
   ``triggers`` queues a retrain of each whose champion is among them
   (``requested_by = "privacy:erasure"``), so the next version learns without it. Until it is
   promoted (through the gate, like any candidate), the marked champion keeps serving: a
   trained model's weights cannot be edited, only replaced.

Prediction rows still in the in-memory log are flushed first, so none escapes. Known limits:
feedback ``metadata`` is deleted with its event; copies outside learnloop's store (exports a
team downloaded, database backups, the dead-letter file of unwritable prediction rows) are the
team's to handle.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from learnloop.artifacts import ArtifactStore
from learnloop.clock import Clock
from learnloop.domain import Feedback, Finding, FindingSink, Prediction, StoredSnapshot
from learnloop.errors import ConflictError, StorageUnavailableError, ValidationError
from learnloop.feedback.ingest import IngestWriter
from learnloop.feedback.intake import hash_subject
from learnloop.registry.service import RegistryService
from learnloop.store.db import Database
from learnloop.store.repositories import events as event_repo
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import models as model_repo
from learnloop.store.repositories import predictions as prediction_repo
from learnloop.store.repositories import snapshots as snapshot_repo
from learnloop.tasks.classification.snapshot import snapshot_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErasureReport:
    subject: str  # the first 12 characters of the subject's hash (never the subject itself)
    predictions: int
    feedback: int
    shadow_answers: int
    snapshot_rows: int
    snapshots: list[str] = field(default_factory=list)
    versions: dict[str, list[int]] = field(default_factory=dict)  # model -> versions trained on the data
    retrains: dict[str, str | None] = field(default_factory=dict)  # model -> queued job id (None: one was queued)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _subject_hash(subject: str) -> str:
    if not subject or len(subject) > 256:
        raise ValidationError("a subject is 1-256 characters", field="subject")
    hashed = hash_subject(subject)
    assert hashed is not None
    return hashed


class PrivacyService:
    def __init__(
        self,
        db: Database,
        store: ArtifactStore,
        ingest: IngestWriter,
        report: FindingSink,
        clock: Clock,
        registry: RegistryService,
    ) -> None:
        self.db = db
        self.store = store
        self.registry = registry  # owns the snapshot and version rows an erasure marks
        self.ingest = ingest
        self.report = report  # where an erasure goes (``triggers``, which decides about a retrain)
        self.clock = clock

    def export(self, subject: str) -> dict[str, Any]:
        hashed = _subject_hash(subject)
        self.ingest.write_now()
        with self.db.read() as conn:
            predictions = prediction_repo.subject_predictions(conn, hashed)
            feedback = feedback_repo.subject_feedback(conn, hashed, [p.id for p in predictions])
        return {
            "subject_hash": hashed,
            "exported_at": self.clock.now().isoformat(),
            "predictions": [_jsonable(p) for p in predictions],
            "feedback": [_jsonable(f) for f in feedback],
        }

    def erase(self, subject: str, *, actor: str, reason: str | None = None) -> ErasureReport:
        hashed = _subject_hash(subject)
        if not self.ingest.write_now():  # predictions still in memory are written first, then found
            raise StorageUnavailableError("the prediction log could not be written; erasure not started, retry")
        with self.db.read() as conn:
            predictions = prediction_repo.subject_predictions(conn, hashed)
            prediction_ids = [p.id for p in predictions]
            feedback = feedback_repo.subject_feedback(conn, hashed, prediction_ids)
            feedback_ids = {f.id for f in feedback}
            models = sorted({p.model for p in predictions} | {f.model for f in feedback})
            snapshots = [s for m in models for s in snapshot_repo.list_snapshots(conn, m)]
            versions = {m: model_repo.list_versions(conn, m) for m in models}
        # 1. snapshot files first: if anything below fails, the rows are still found next time.
        rewritten: dict[str, int] = {}
        moved: dict[str, str] = {}  # snapshot hash -> its key, for rows that held an old absolute URI
        for snap in snapshots:
            dropped = self._rewrite_snapshot(snap, feedback_ids)
            if dropped:
                rewritten[snap.hash] = dropped
                if snap.uri != snapshot_key(snap.model, snap.hash):
                    moved[snap.hash] = snapshot_key(snap.model, snap.hash)
        affected = {m: [v.version for v in versions[m] if v.snapshot_hash in rewritten] for m in models}
        now = self.clock.now()
        # 2. the marks, before the rows go: a failure after this finds the rows again next time.
        self.registry.mark_erasure(snapshots=rewritten, moved=moved, versions=affected, at=now)
        with self.db.write() as conn:
            shadows = prediction_repo.delete_shadow_predictions(conn, prediction_ids)
            n_feedback = feedback_repo.delete_feedback(conn, sorted(feedback_ids))
            n_predictions = prediction_repo.delete_predictions(conn, prediction_ids)
            for model in models:
                event_repo.insert_event(
                    conn,
                    model=model,
                    kind="subject_erased",
                    at=now,
                    actor=actor,
                    reason=reason,
                    data={
                        "subject": hashed[:12],
                        "predictions": sum(p.model == model for p in predictions),
                        "feedback": sum(f.model == model for f in feedback),
                        "versions_trained_on_it": affected[model],
                    },
                )
        retrains: dict[str, str | None] = {}
        for model, numbers in affected.items():
            if not numbers:
                continue
            try:
                job = self.report(Finding(model, "erasure", "retrain without an erased subject", tuple(numbers)))
            except ConflictError:  # one is queued or running: it reads the erased data
                retrains[model] = None
            else:
                if job is not None:
                    retrains[model] = job.id
        report = ErasureReport(
            subject=hashed[:12],
            predictions=n_predictions,
            feedback=n_feedback,
            shadow_answers=shadows,
            snapshot_rows=sum(rewritten.values()),
            snapshots=sorted(rewritten),
            versions={m: v for m, v in affected.items() if v},
            retrains=retrains,
        )
        log.info("subject %s erased by %s: %s", hashed[:12], actor, report.to_dict())
        return report

    def _rewrite_snapshot(self, snap: StoredSnapshot, feedback_ids: set[str]) -> int:
        if not feedback_ids:
            return 0
        data = self.store.get_bytes(snap.uri)
        lines = gzip.decompress(data).splitlines(keepends=True)
        kept = [line for line in lines if not line.strip() or orjson.loads(line).get("feedback_id") not in feedback_ids]
        dropped = len(lines) - len(kept)
        if dropped:
            self.store.put_bytes(snapshot_key(snap.model, snap.hash), gzip.compress(b"".join(kept), mtime=0))
        return dropped


def _jsonable(record: Prediction | Feedback) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in asdict(record).items()}
