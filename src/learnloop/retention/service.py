"""Apply a model's retention policy (``learnloop gc``, and the worker after each retrain and
in an hourly sweep): remove old rejected and retired versions' artifacts, drop re-creatable
caches of versions that no longer serve, and say what that freed.

A removal is recorded (``artifacts_pruned_at``) in the same transaction that checks the
version is still unprotected, before a byte is deleted: a promotion or rollback that comes
after it is refused with ``artifact_removed``, never half-loaded. One ``artifacts_pruned``
event per run that changed something goes to the model's trail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from sqlalchemy import Connection

from learnloop.artifacts import ArtifactStore
from learnloop.clock import Clock
from learnloop.errors import ArtifactError
from learnloop.families.manifest import CACHE_FILES, drop_caches
from learnloop.retention.selection import Pruning, protected_versions, select_pruning
from learnloop.store.db import Database
from learnloop.store.repositories import events as event_repo
from learnloop.store.repositories import models as model_repo
from learnloop.store.repositories import rollouts as rollout_repo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrunedVersion:
    """One version pruned (or, in a dry run, to be pruned), with the bytes it frees."""

    pruning: Pruning
    bytes_freed: int
    files: tuple[str, ...] = ()  # caches dropped (drop_caches)


@dataclass(frozen=True)
class RetentionReport:
    model: str
    dry_run: bool
    pruned: list[PrunedVersion] = field(default_factory=list)
    protected: tuple[int, ...] = ()

    @property
    def bytes_freed(self) -> int:
        return sum(p.bytes_freed for p in self.pruned)


class RetentionService:
    def __init__(self, db: Database, store: ArtifactStore, clock: Clock) -> None:
        self.db = db
        self.store = store
        self.clock = clock

    def _plan(self, conn: Connection, model: str, *, lock: bool = False) -> tuple[list[Pruning], frozenset[int]]:
        policy = model_repo.get_model(conn, model).policy.retention
        deployment = model_repo.get_deployment(conn, model, for_update=lock)
        rollout = rollout_repo.active_rollout(conn, model, for_update=lock)
        versions = model_repo.list_versions(conn, model)
        arms = () if rollout is None else (rollout.version, rollout.baseline_version)
        protected = protected_versions(
            versions, champion=deployment.champion_version, previous=deployment.previous_version, rollout_arms=arms
        )
        return select_pruning(versions, protected, policy, self.clock.now()), protected

    def plan(self, model: str) -> list[Pruning]:
        """What the policy would prune now (nothing is changed)."""
        with self.db.read() as conn:
            return self._plan(conn, model)[0]

    def apply(self, model: str, *, dry_run: bool = False, actor: str = "retention") -> RetentionReport:
        """Prune ``model``'s versions per its policy (``dry_run``: only measure what would go)."""
        if dry_run:
            with self.db.read() as conn:
                plan, protected = self._plan(conn, model)
                versions = {v.version: v for v in model_repo.list_versions(conn, model)}
            would = [
                PrunedVersion(
                    p, self._would_free(versions[p.version].artifact_uri, versions[p.version].family, p.action)
                )
                for p in plan
            ]
            return RetentionReport(model, True, would, tuple(sorted(protected)))
        now = self.clock.now()
        with self.db.write() as conn:  # claim the removals while nothing can protect them meanwhile
            plan, protected = self._plan(conn, model, lock=True)
            versions = {v.version: v for v in model_repo.list_versions(conn, model)}
            for p in plan:
                if p.action == "remove":
                    model_repo.mark_version_retention(conn, model, p.version, pruned_at=now)
        pruned: list[PrunedVersion] = []
        for p in plan:
            v = versions[p.version]
            try:
                if p.action == "remove":
                    size = self.store.size(v.artifact_uri) if "://" not in v.artifact_uri else 0
                    self.store.delete(v.artifact_uri)
                    pruned.append(PrunedVersion(p, size))
                else:
                    pruned.append(self._drop(p, v.artifact_uri, v.family))
            except ArtifactError as exc:  # the record stands; the next sweep does not retry a removal
                log.warning("model %s: retention of version %s failed: %s", model, p.version, exc)
        with self.db.write() as conn:
            for item in pruned:
                if item.pruning.action == "drop_caches":
                    model_repo.mark_version_retention(conn, model, item.pruning.version, dropped_at=now)
            if pruned:
                event_repo.insert_event(
                    conn,
                    model=model,
                    kind="artifacts_pruned",
                    at=now,
                    actor=actor,
                    reason="retention policy",
                    data={
                        "removed": [i.pruning.version for i in pruned if i.pruning.action == "remove"],
                        "caches_dropped": [i.pruning.version for i in pruned if i.pruning.action == "drop_caches"],
                        "bytes_freed": sum(i.bytes_freed for i in pruned),
                    },
                )
        report = RetentionReport(model, False, pruned, tuple(sorted(protected)))
        if pruned:
            log.info("model %s: retention pruned %d version(s), %d bytes freed", model, len(pruned), report.bytes_freed)
        return report

    def sweep(self, *, actor: str = "retention") -> list[RetentionReport]:
        """Apply every model's policy (the worker's hourly sweep); a failing model is logged."""
        with self.db.read() as conn:
            names = [m.name for m in model_repo.list_models(conn)]
        reports = []
        for name in names:
            try:
                reports.append(self.apply(name, actor=actor))
            except Exception:
                log.exception("retention sweep of model %s failed", name)
        return reports

    def _drop(self, p: Pruning, ref: str, family: str) -> PrunedVersion:
        if "://" in ref:  # a row from before keys: left as it is
            return PrunedVersion(p, 0)
        before = self.store.size(ref)
        files = drop_caches(self.store, ref, family)
        freed = before - self.store.size(ref) if files else 0
        return replace(PrunedVersion(p, max(freed, 0)), files=tuple(files))

    def _would_free(self, ref: str, family: str, action: str) -> int:
        if "://" in ref:
            return 0
        if action == "remove":
            return self.store.size(ref)
        directory = self.store.get_dir(ref)
        return sum((directory / n).stat().st_size for n in CACHE_FILES.get(family, ()) if (directory / n).is_file())
