"""Deleting a model, as one use case for ``learnloop delete`` and ``DELETE /v1/models/{model}``.

One transaction removes the model's rows from every table (its versions, deployment,
bootstrap examples, predictions and shadow answers, feedback, snapshots, rollouts, jobs and
drift checks) and writes a ``model_deleted`` event with the counts; the audit trail itself
stays (events have no foreign key to models), so the model's history and its deletion remain
readable. Then the model's files leave the artifact store. Refused (``ConflictError``) while a
job of the model runs: a retrain half-way would write a version of a model that is gone. A
queued job is deleted with the model.

Every server process drops the model at its next route refresh; predictions still in this
process's log are written before the rows go, so none outlives the model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection

from learnloop.artifacts import ArtifactStore
from learnloop.clock import Clock
from learnloop.domain import JobStatus
from learnloop.drift import reference as drift_reference
from learnloop.errors import ConflictError, StorageUnavailableError
from learnloop.feedback.ingest import IngestWriter
from learnloop.store.db import Database
from learnloop.store.repositories import drift as drift_repo
from learnloop.store.repositories import events as event_repo
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import jobs as job_repo
from learnloop.store.repositories import models as model_repo
from learnloop.store.repositories import predictions as prediction_repo
from learnloop.store.repositories import rollouts as rollout_repo
from learnloop.store.repositories import snapshots as snapshot_repo
from learnloop.tasks.classification.snapshot import snapshot_key

log = logging.getLogger(__name__)
# Where a model's files live in the artifact store, whatever rows still name them.
_PREFIXES = ("models/{}", "snapshots/{}", "drift/{}")


@dataclass(frozen=True)
class DeletionReport:
    model: str
    rows: dict[str, int]  # table -> rows deleted
    versions: list[int]
    artifacts: int  # files and directories removed from the artifact store
    snapshots_kept: dict[str, str] = field(default_factory=dict)  # shared snapshot -> the model it went to

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ModelDeletion:
    def __init__(
        self,
        db: Database,
        store: ArtifactStore,
        ingest: IngestWriter,
        clock: Clock,
        on_routing_change: Callable[[str], None] | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.ingest = ingest
        self.clock = clock
        self._on_routing_change = on_routing_change

    def delete(self, name: str, *, actor: str, reason: str | None = None) -> DeletionReport:
        if not self.ingest.write_now():  # this model's answers still in memory go with it
            raise StorageUnavailableError("the prediction log could not be written; nothing deleted, retry")
        with self.db.write() as conn:
            model_repo.get_model(conn, name)  # NotFoundError
            model_repo.get_deployment(conn, name, for_update=True)  # one change of routing at a time
            self._refuse_while_running(conn, name)
            versions = model_repo.list_versions(conn, name)
            files = {v.artifact_uri for v in versions if v.artifact_uri}  # an external model's versions have none
            files |= {
                v.metrics[drift_reference.METRICS_KEY] for v in versions if v.metrics.get(drift_reference.METRICS_KEY)
            }
            kept = self._hand_over_snapshots(conn, name)
            files |= {s.uri for s in snapshot_repo.list_snapshots(conn, name) if s.hash not in kept}
            rows = self._delete_rows(conn, name)
            event_repo.insert_event(
                conn,
                model=name,
                kind="model_deleted",
                at=self.clock.now(),
                actor=actor,
                reason=reason,
                data={"rows": rows, "versions": [v.version for v in versions], "snapshots_kept": kept},
            )
        removed = self._remove_files(name, files)
        log.info("model %s deleted by %s: %s", name, actor, rows)
        if self._on_routing_change is not None:
            self._on_routing_change(name)
        return DeletionReport(name, rows, [v.version for v in versions], removed, kept)

    @staticmethod
    def _refuse_while_running(conn: Connection, name: str) -> None:
        running = [
            j
            for j in job_repo.lock_for_model(conn, name)
            if j.status == JobStatus.RUNNING or (j.status == JobStatus.PAUSED and j.worker is not None)
        ]  # a paused job its worker holds has a stopped fit, still in its training process
        if running:
            job = running[0]
            raise ConflictError(
                f"a {job.kind} of model {name!r} is {job.status.value} (job {job.id}); "
                "delete the model once it has ended",
                field="model",
            )

    def _hand_over_snapshots(self, conn: Connection, name: str) -> dict[str, str]:
        """Snapshots are content-addressed: one this model owns that another model's version was
        trained on too goes to that model (with a copy of its rows under that model's name)."""
        owned = {s.hash: s.uri for s in snapshot_repo.list_snapshots(conn, name)}
        users = model_repo.snapshot_users(conn, owned, besides=name)
        for snapshot_hash, other in users.items():
            uri = self.store.put_bytes(snapshot_key(other, snapshot_hash), self.store.get_bytes(owned[snapshot_hash]))
            snapshot_repo.hand_over_snapshot(conn, snapshot_hash, other, uri)
        return users

    @staticmethod
    def _delete_rows(conn: Connection, name: str) -> dict[str, int]:
        rows = {
            **prediction_repo.delete_for_model(conn, name),
            "feedback": feedback_repo.delete_for_model(conn, name),
            "rollouts": rollout_repo.delete_for_model(conn, name),
            "drift_checks": drift_repo.delete_for_model(conn, name),
            "jobs": job_repo.delete_for_model(conn, name),
            "snapshots": snapshot_repo.delete_for_model(conn, name),
        }
        rows.update(model_repo.delete_model(conn, name))  # last: the tables above may refer to it
        return rows

    def _remove_files(self, name: str, files: set[str]) -> int:
        """After the commit: a file that cannot go is logged, never resurrects a row."""
        removed = 0
        for target in sorted(files) + [prefix.format(name) for prefix in _PREFIXES]:
            try:
                removed += self.store.delete(target)
            except Exception:
                log.exception("model %s is deleted but %s could not be removed", name, target)
        return removed
