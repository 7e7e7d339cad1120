"""Models, versions and who is champion: create, register, promote, roll back.

Every routing change bumps the deployment's revision (so every server process picks it up)
and writes an event with who did it and why.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from learnloop.clock import Clock
from learnloop.domain import (
    Deployment,
    Event,
    Job,
    Model,
    ModelVersion,
    Policy,
    Task,
    VersionStatus,
)
from learnloop.errors import ConflictError, ValidationError
from learnloop.families import get_family
from learnloop.registry.artifacts import ArtifactStore, load_predictor
from learnloop.store import repositories as repo
from learnloop.store.db import Database

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class ModelOverview:
    model: Model
    deployment: Deployment
    versions: list[ModelVersion]
    feedback_counts: dict[str, int]
    last_retrain: Job | None
    recent_events: list[Event]


def check_model_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValidationError(
            f"model name {name!r} must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit",
            field="model",
        )
    return name


class RegistryService:
    def __init__(
        self,
        db: Database,
        store: ArtifactStore,
        clock: Clock,
        on_routing_change: Callable[[str], None] | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.clock = clock
        self._on_routing_change = on_routing_change

    # -- models ---------------------------------------------------------------------------
    def create_model(
        self,
        *,
        name: str,
        labels: list[str],
        family: str,
        params: dict[str, Any],
        policy: Policy,
        train: list[tuple[str, str]],
        golden: list[tuple[str, str]],
        source: str,
    ) -> Model:
        check_model_name(name)
        params = get_family(family).resolve_params(params)
        if len(labels) < 2:
            raise ValidationError(f"a model needs at least two labels, found {labels}", field="label_column")
        model = Model(
            name=name,
            task=Task.BINARY if len(labels) == 2 else Task.MULTICLASS,
            labels=tuple(labels),
            family=family,
            params=params,
            policy=policy,
            created_at=self.clock.now(),
        )
        with self.db.write() as conn:
            repo.insert_model(conn, model)
            repo.insert_examples(conn, name, "train", train, source)
            repo.insert_examples(conn, name, "golden", golden, source)
            repo.insert_event(
                conn,
                model=name,
                kind="model_created",
                at=model.created_at,
                actor="cli",
                data={
                    "labels": labels,
                    "train": len(train),
                    "golden": len(golden),
                    "source": source,
                },
            )
        return model

    def overview(self, name: str) -> ModelOverview:
        with self.db.read() as conn:
            jobs = repo.list_jobs(conn, name, limit=50)
            return ModelOverview(
                model=repo.get_model(conn, name),
                deployment=repo.get_deployment(conn, name),
                versions=repo.list_versions(conn, name),
                feedback_counts=repo.feedback_counts(conn, name),
                last_retrain=next((j for j in jobs if j.kind == "retrain"), None),
                recent_events=repo.list_events(conn, name, 10),
            )

    def snapshot(self, hash: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            return repo.get_snapshot(conn, hash)

    def get_model(self, name: str) -> Model:
        with self.db.read() as conn:
            return repo.get_model(conn, name)

    def list_models(self) -> list[Model]:
        with self.db.read() as conn:
            return repo.list_models(conn)

    def update_policy(self, name: str, changes: dict[str, Any], actor: str) -> Model:
        with self.db.write() as conn:
            model = repo.get_model(conn, name)
            policy = model.policy.updated(changes)
            repo.update_model(conn, name, policy=policy)
            repo.insert_event(
                conn,
                model=name,
                kind="policy_changed",
                at=self.clock.now(),
                actor=actor,
                data={"changes": changes},
            )
            return repo.get_model(conn, name)

    # -- versions -------------------------------------------------------------------------
    def versions(self, model: str) -> list[ModelVersion]:
        with self.db.read() as conn:
            repo.get_model(conn, model)
            return repo.list_versions(conn, model)

    def version(self, model: str, version: int) -> ModelVersion:
        with self.db.read() as conn:
            return repo.get_version(conn, model, version)

    def deployment(self, model: str) -> Deployment:
        with self.db.read() as conn:
            return repo.get_deployment(conn, model)

    def events(
        self, model: str, limit: int = 50, after_id: int | None = None, kinds: Sequence[str] | None = None
    ) -> list[Event]:
        with self.db.read() as conn:
            repo.get_model(conn, model)  # NotFoundError for an unknown model
            return repo.list_events(conn, model, limit, after_id, kinds)

    def register(self, draft: ModelVersion, *, actor: str) -> ModelVersion:
        """Store a new version; its number is assigned here."""
        with self.db.write() as conn:
            number = repo.next_version_number(conn, draft.model)
            version = replace(draft, version=number)
            repo.insert_version(conn, version)
            repo.insert_event(
                conn,
                model=draft.model,
                kind="version_registered" if draft.status != VersionStatus.REJECTED else "candidate_rejected",
                version=number,
                at=self.clock.now(),
                actor=actor,
                reason=draft.status_reason,
                data={"verdict": draft.verdict, "snapshot": draft.snapshot_hash},
            )
        return version

    # -- routing --------------------------------------------------------------------------
    def promote(self, model: str, version: int, *, actor: str, reason: str | None = None) -> Deployment:
        target = self.version(model, version)
        if target.status == VersionStatus.FAILED:
            raise ConflictError(f"version {version} of {model!r} failed to train and cannot be promoted")
        # Refuse before switching anything if the artifact does not load.
        load_predictor(self.store, target.artifact_uri)
        with self.db.write() as conn:
            deployment = repo.get_deployment(conn, model, for_update=True)
            if deployment.champion_version == version:
                raise ConflictError(f"version {version} is already the champion of {model!r}")
            old = deployment.champion_version
            now = self.clock.now()
            repo.set_deployment(conn, model, version, old, now)
            repo.set_version_status(conn, model, version, VersionStatus.CHAMPION, reason)
            if old is not None:
                repo.set_version_status(conn, model, old, VersionStatus.RETIRED, f"replaced by version {version}")
            repo.insert_event(
                conn,
                model=model,
                kind="promoted",
                version=version,
                at=now,
                actor=actor,
                reason=reason,
                data={"previous": old},
            )
            result = repo.get_deployment(conn, model)
        log.info("model %s: version %s promoted by %s (%s)", model, version, actor, reason)
        self._routing_changed(model)
        return result

    def rollback(self, model: str, *, actor: str, reason: str | None = None) -> Deployment:
        with self.db.write() as conn:
            deployment = repo.get_deployment(conn, model, for_update=True)
            if deployment.previous_version is None or deployment.champion_version is None:
                raise ConflictError(f"model {model!r} has no previous champion to roll back to")
            bad, good = deployment.champion_version, deployment.previous_version
            now = self.clock.now()
            repo.set_deployment(conn, model, good, None, now)
            repo.set_version_status(conn, model, good, VersionStatus.CHAMPION, f"restored by rollback of {bad}")
            repo.set_version_status(
                conn,
                model,
                bad,
                VersionStatus.RETIRED,
                f"rolled back: {reason or 'no reason given'}",
            )
            repo.insert_event(
                conn,
                model=model,
                kind="rolled_back",
                version=good,
                at=now,
                actor=actor,
                reason=reason,
                data={"from": bad, "to": good},
            )
            result = repo.get_deployment(conn, model)
        log.info("model %s: rolled back from %s to %s by %s (%s)", model, bad, good, actor, reason)
        self._routing_changed(model)
        return result

    def _routing_changed(self, model: str) -> None:
        if self._on_routing_change is not None:
            try:
                self._on_routing_change(model)
            except Exception:  # the change is committed; other processes pick it up by polling
                log.exception("refreshing routes of %s after a change failed", model)
