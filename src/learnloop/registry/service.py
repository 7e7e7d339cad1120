"""Models, versions and who serves: create, register, promote, roll back, start and end
rollouts.

Every routing change bumps the deployment's revision (so every server process picks it up)
and writes an event with who did it and why. A promotion or a rollback while a rollout runs
ends that rollout in the same transaction: promoting its challenger finishes it, promoting
another version stops it, and a rollback takes the challenger off traffic (the champion is
untouched), so "rollback" always means "back to what was serving before the change".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection

from learnloop.artifacts import ArtifactStore
from learnloop.clock import Clock
from learnloop.domain import (
    SERVER_TRAIL,
    Deployment,
    Event,
    Job,
    Model,
    ModelVersion,
    Rollout,
    RolloutStatus,
    StoredSnapshot,
    Strategy,
    VersionStatus,
)
from learnloop.errors import ConflictError, GateRejectedError, NotFoundError, ValidationError
from learnloop.evaluation.headline import verdict_headline
from learnloop.families import get_family
from learnloop.families.manifest import check_servable
from learnloop.policy import Policy
from learnloop.selection import check_selection
from learnloop.store.db import Database
from learnloop.store.repositories import events as event_repo
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import jobs as job_repo
from learnloop.store.repositories import models as model_repo
from learnloop.store.repositories import rollouts as rollout_repo
from learnloop.store.repositories import snapshots as snapshot_repo
from learnloop.tasks import Candidate, get_task
from learnloop.tasks.classification import ClassificationTask
from learnloop.tasks.classification.export import export_snapshot
from learnloop.tasks.generation import training_data as generation_data

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class ModelOverview:
    model: Model
    deployment: Deployment
    rollout: Rollout | None
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
        task: str = ClassificationTask.key,
    ) -> Model:
        """Store a model and its bootstrap data, with no version yet (``TrainingService.bootstrap``
        trains one). ``learnloop init`` and ``POST /v1/models`` go through ``models.ModelCreation``,
        which stores nothing until version 1 is trained."""
        check_model_name(name)
        get_task(task)  # ValidationError for an unknown task
        chosen = get_family(family)
        if chosen.task != task:
            raise ValidationError(f"model family {family!r} serves the {chosen.task} task, not {task}", field="family")
        params = chosen.resolve_params(params)
        if len(labels) < 2:
            raise ValidationError(f"a model needs at least two labels, found {labels}", field="label_column")
        model = Model(
            name=name,
            task=task,
            labels=tuple(labels),
            family=family,
            params=params,
            policy=policy,
            created_at=self.clock.now(),
        )
        with self.db.write() as conn:
            self._insert_model(conn, model, train, golden, source, "cli")
        self.db.note_written("examples", len(train) + len(golden))  # a bulk load: fresh planner statistics
        return model

    def create_with_champion(
        self,
        model: Model,
        *,
        train: list[tuple[str, str]],
        golden: list[tuple[str, str]],
        source: str,
        candidate: Candidate | None,
        first: ModelVersion,
        actor: str,
        golden_metadata: Sequence[Mapping[str, Any] | None] = (),
    ) -> ModelVersion:
        """Store a model, its bootstrap data, its snapshot and version 1 as champion, in one
        transaction: all of it or (``ConflictError`` if the name is taken meanwhile) none.
        ``candidate`` None: version 1 was not trained (a generative model whose answers are made
        elsewhere: no snapshot, no artifact)."""
        if first.artifact_uri:
            check_servable(self.store, first.artifact_uri)  # refuse before storing anything
        now = self.clock.now()
        with self.db.write() as conn:
            self._insert_model(conn, model, train, golden, source, actor, golden_metadata)
            if candidate is not None:
                snapshot_repo.upsert_snapshot(
                    conn, hash=candidate.snapshot_hash, model=model.name, uri=candidate.snapshot_key,
                    counts=candidate.snapshot_counts, cutoff=candidate.snapshot_cutoff, at=now,
                )  # fmt: skip
            version = self._insert_version(conn, first, actor)
            model_repo.set_deployment(conn, model.name, version.version, None, now)
            model_repo.set_version_status(
                conn, model.name, version.version, VersionStatus.CHAMPION, "bootstrap version", now
            )
            event_repo.insert_event(
                conn, model=model.name, kind="promoted", version=version.version, at=now, actor=actor,
                reason="bootstrap version", data={"previous": None},
            )  # fmt: skip
            if candidate is not None:
                model_repo.update_model(conn, model.name, retrain_watermark=candidate.snapshot_cutoff)
        self.db.note_written("examples", len(train) + len(golden))  # a bulk load: fresh planner statistics
        log.info("model %s created by %s; version 1 is champion", model.name, actor)
        self.routing_changed(model.name)
        return self.version(model.name, version.version)

    def _insert_model(
        self,
        conn: Connection,
        model: Model,
        train: list[tuple[str, str]],
        golden: list[tuple[str, str]],
        source: str,
        actor: str,
        golden_metadata: Sequence[Mapping[str, Any] | None] = (),
    ) -> None:
        model_repo.insert_model(conn, model)
        model_repo.insert_examples(conn, model.name, "train", train, source)
        model_repo.insert_examples(conn, model.name, "golden", golden, source, golden_metadata)
        event_repo.insert_event(
            conn,
            model=model.name,
            kind="model_created",
            at=model.created_at,
            actor=actor,
            data={
                "labels": list(model.labels),
                "train": len(train),
                "golden": len(golden),
                "source": source,
                "family": model.family,
            },
        )

    def overview(self, name: str) -> ModelOverview:
        with self.db.read() as conn:
            jobs = job_repo.list_jobs(conn, name, limit=50)
            return ModelOverview(
                model=model_repo.get_model(conn, name),
                deployment=model_repo.get_deployment(conn, name),
                rollout=rollout_repo.active_rollout(conn, name),
                versions=model_repo.list_versions(conn, name),
                feedback_counts=feedback_repo.feedback_counts(conn, name),
                last_retrain=next((j for j in jobs if j.kind == "retrain"), None),
                recent_events=event_repo.list_events(conn, name, 10),
            )

    def snapshot(self, hash: str) -> StoredSnapshot | None:
        with self.db.read() as conn:
            return snapshot_repo.get_snapshot(conn, hash)

    def training_data(self, model: str, version: int | None = None, fmt: str = "jsonl", part: str = "train") -> bytes:
        """What a version (default: the champion) was trained on, as JSON Lines or CSV. A
        generative model's in a trainer's format (``trl-sft``, ``openai-dpo``, ...), its ``train``
        or ``held_out`` part, and with no version named what its *next* version would train on
        (or be judged on): its feedback up to now, curated under its policy."""
        if part not in ("train", "held_out"):
            raise ValidationError(f"part must be 'train' or 'held_out'; got {part!r}", field="part")
        chosen: Literal["train", "held_out"] = "train" if part == "train" else "held_out"
        now = self.clock.now()
        with self.db.read() as conn:
            spec = model_repo.get_model(conn, model)
            generation_data.check_format(spec, fmt)
            generative = spec.task == generation_data.TASK_KEY
            if generative and version is None:
                events = feedback_repo.feedback_with_predictions(conn, model, now)
            else:
                number = version if version is not None else model_repo.get_deployment(conn, model).champion_version
                if number is None:
                    raise ConflictError(f"model {model!r} has no champion; name a version")
                found = model_repo.get_version(conn, model, number)
                snap = snapshot_repo.get_snapshot(conn, found.snapshot_hash) if found.snapshot_hash else None
        if generative and version is None:  # curated outside the transaction
            return generation_data.training_data(spec, events, spec.policy, now, fmt, chosen)
        if snap is None:
            raise NotFoundError(f"version {number} of {model!r} has no stored snapshot", field="version")
        if generative:
            return generation_data.snapshot_training_data(spec, self.store.get_bytes(snap.uri), fmt, chosen)
        if part != "train":
            raise ValidationError(
                f"model {model!r} is a classifier: its snapshot has no held-out part (its golden set is apart)",
                field="part",
            )
        return export_snapshot(self.store.get_bytes(snap.uri), fmt)

    def get_model(self, name: str) -> Model:
        with self.db.read() as conn:
            return model_repo.get_model(conn, name)

    def list_models(self) -> list[Model]:
        with self.db.read() as conn:
            return model_repo.list_models(conn)

    def update_policy(self, name: str, changes: dict[str, Any], actor: str) -> Model:
        with self.db.write() as conn:
            model = model_repo.get_model(conn, name)
            policy = model.policy.updated(changes)
            check_selection(model.family, model.params, policy.selection, model.task)
            # Serving reads the policy too (what to scrub from stored text): every process reloads.
            updated = self._change_model(conn, name, "policy_changed", actor, {"changes": changes}, policy=policy)
        self.routing_changed(name)
        return updated

    def set_family_params(
        self, name: str, family: str, params: Mapping[str, Any], actor: str, data: Mapping[str, Any] | None = None
    ) -> Model:
        """The family and parameters the model's next retrains train with (its own candidate),
        checked as ``init --param`` checks them; recorded as a ``params_changed`` event with
        what they were, and ``data`` (where they came from, e.g. a study's best trial)."""
        chosen = get_family(family)
        with self.db.write() as conn:
            model = model_repo.get_model(conn, name)
            if chosen.task != model.task or not chosen.trainable:
                raise ValidationError(f"family {family!r} cannot train a {model.task} model", field="family")
            resolved = chosen.resolve_params(params)
            check_selection(family, resolved, model.policy.selection, model.task)
            previous = {"family": model.family, "params": model.params}
            recorded = {"family": family, "params": resolved, "previous": previous, **(data or {})}
            updated = self._change_model(conn, name, "params_changed", actor, recorded, family=family, params=resolved)
        self.routing_changed(name)
        return updated

    def _change_model(
        self, conn: Connection, name: str, kind: str, actor: str, data: dict[str, Any], **values: Any
    ) -> Model:
        """An admin's change of the model's row, in the caller's transaction: stored, every
        process told to reload it (the revision), and recorded as a ``kind`` event; the model as
        it is now. The caller reloads this process's route once it has committed."""
        model_repo.update_model(conn, name, **values)
        model_repo.bump_revision(conn, name, self.clock.now())
        event_repo.insert_event(conn, model=name, kind=kind, at=self.clock.now(), actor=actor, data=data)
        return model_repo.get_model(conn, name)

    def mark_retrain(self, name: str, *, watermark: datetime, started: bool = True) -> None:
        """Feedback strictly before ``watermark`` is in the snapshot being made (the volume
        trigger counts from there again, at or after it); with ``started`` it is also when the
        last retrain began (cooldown)."""
        with self.db.write() as conn:
            values = {"retrain_watermark": watermark} | ({"last_retrain_at": watermark} if started else {})
            model_repo.update_model(conn, name, **values)

    def record_snapshot(
        self, model: str, *, hash: str, key: str, counts: dict[str, Any], cutoff: datetime | None
    ) -> None:
        """A snapshot a version was trained on (its rows are in the artifact store already)."""
        with self.db.write() as conn:
            snapshot_repo.upsert_snapshot(
                conn, hash=hash, model=model, uri=key, counts=counts, cutoff=cutoff, at=self.clock.now()
            )

    def mark_erasure(
        self, *, snapshots: dict[str, int], moved: dict[str, str], versions: dict[str, list[int]], at: datetime
    ) -> None:
        """Subjects' rows were erased from these snapshots (rows dropped, by hash; ``moved``: the
        new key of a snapshot whose erased copy was written under its key) and so from what
        these versions (by model) were trained on: record both, in one transaction."""
        with self.db.write() as conn:
            for snapshot_hash, dropped in snapshots.items():
                snapshot_repo.mark_snapshot_erasure(conn, snapshot_hash, dropped, at)
            for snapshot_hash, key in moved.items():
                snapshot_repo.set_snapshot_uri(conn, snapshot_hash, key)
            for model, numbers in versions.items():
                for number in numbers:
                    model_repo.mark_version_erasure(conn, model, number, at)

    # -- versions -------------------------------------------------------------------------
    def versions(self, model: str) -> list[ModelVersion]:
        with self.db.read() as conn:
            model_repo.get_model(conn, model)
            return model_repo.list_versions(conn, model)

    def version(self, model: str, version: int) -> ModelVersion:
        with self.db.read() as conn:
            return model_repo.get_version(conn, model, version)

    def deployment(self, model: str) -> Deployment:
        with self.db.read() as conn:
            return model_repo.get_deployment(conn, model)

    def events(
        self, model: str, limit: int = 50, after_id: int | None = None, kinds: Sequence[str] | None = None
    ) -> list[Event]:
        """A model's trail, or with ``SERVER_TRAIL`` the server's own (``access/audit.py``)."""
        with self.db.read() as conn:
            if model != SERVER_TRAIL:
                model_repo.get_model(conn, model)  # NotFoundError for an unknown model
            return event_repo.list_events(conn, model, limit, after_id, kinds)

    def register(self, draft: ModelVersion, *, actor: str) -> ModelVersion:
        """Store a new version; its number is assigned here."""
        with self.db.write() as conn:
            return self._insert_version(conn, draft, actor)

    def _insert_version(self, conn: Connection, draft: ModelVersion, actor: str) -> ModelVersion:
        number = model_repo.next_version_number(conn, draft.model)
        version = replace(draft, version=number)
        model_repo.insert_version(conn, version)
        event_repo.insert_event(
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

    def fail_stranded_candidates(self, model: str, *, registered_by: str, reason: str) -> list[int]:
        """Mark ``failed`` the candidates ``registered_by`` left neither served nor judged (a
        retrain attempt that died between registering and rolling out): a retry starts clean,
        and nobody promotes a half-finished attempt's version by mistake. Returns them."""
        with self.db.write() as conn:
            stranded = [
                number
                for number in event_repo.versions_registered_by(conn, model, registered_by)
                if model_repo.get_version(conn, model, number).status == VersionStatus.CANDIDATE
            ]
            now = self.clock.now()
            for number in stranded:
                model_repo.set_version_status(conn, model, number, VersionStatus.FAILED, reason, now)
                event_repo.insert_event(
                    conn,
                    model=model,
                    kind="candidate_abandoned",
                    version=number,
                    at=self.clock.now(),
                    actor=registered_by,
                    reason=reason,
                )
        return stranded

    # -- routing --------------------------------------------------------------------------
    def _servable(self, model: str, version: int, action: str, *, force: bool = True) -> ModelVersion:
        """The version, if it may go on traffic: trained, its artifact loads, and (unless
        ``force``) not rejected by the offline gate."""
        target = self.version(model, version)
        target.check_artifact()
        if target.status == VersionStatus.FAILED:
            raise ConflictError(f"version {version} of {model!r} failed to train and cannot be {action}")
        if not force and target.verdict is not None and not target.verdict.get("passed", True):
            raise GateRejectedError(
                f"version {version} of {model!r} was rejected by the gate: "
                f"{verdict_headline(target.verdict).removeprefix('rejected: ')}; "
                f'force it (--force, or "force": true) to have it {action} anyway'
            )
        # Refuse before switching anything if the artifact does not load (none: answers made elsewhere).
        if target.artifact_uri:
            check_servable(self.store, target.artifact_uri)
        return target

    def promote(
        self,
        model: str,
        version: int,
        *,
        actor: str,
        reason: str | None = None,
        rollout_stats: dict[str, Any] | None = None,
        rollout_id: int | None = None,
        force: bool = False,
    ) -> Deployment:
        """Make ``version`` the champion. With ``rollout_id`` (a rollout's own decision), only
        while that rollout is still running. A version the gate rejected needs ``force`` (a
        rollout's decision is forced: starting it was)."""
        self._servable(model, version, "promoted", force=force or rollout_id is not None)
        with self.db.write() as conn:
            deployment = model_repo.get_deployment(conn, model, for_update=True)
            if deployment.champion_version == version:
                raise ConflictError(f"version {version} is already the champion of {model!r}")
            live = rollout_repo.active_rollout(conn, model, for_update=True)
            if rollout_id is not None and (live is None or live.id != rollout_id):
                raise ConflictError(f"rollout {rollout_id} of {model!r} is no longer running")
            old = deployment.champion_version
            now = self.clock.now()
            model_repo.set_deployment(conn, model, version, old, now)
            model_repo.set_version_status(conn, model, version, VersionStatus.CHAMPION, reason, now)
            if old is not None:
                model_repo.set_version_status(
                    conn, model, old, VersionStatus.RETIRED, f"replaced by version {version}", now
                )
            event_repo.insert_event(
                conn,
                model=model,
                kind="promoted",
                version=version,
                at=now,
                actor=actor,
                reason=reason,
                data={"previous": old} | ({"rollout": live.id, "stats": rollout_stats or live.stats} if live else {}),
            )
            if live is not None:
                if live.version == version:
                    self._end_rollout(conn, live, RolloutStatus.PROMOTED, actor, reason, rollout_stats, event=False)
                else:
                    self._end_rollout(
                        conn, live, RolloutStatus.STOPPED, actor, f"superseded: version {version} promoted", None
                    )
            result = model_repo.get_deployment(conn, model)
        log.info("model %s: version %s promoted by %s (%s)", model, version, actor, reason)
        self.routing_changed(model)
        return result

    def start_rollout(
        self,
        model: str,
        version: int,
        strategy: Strategy,
        *,
        actor: str,
        reason: str | None = None,
        settings: Policy | None = None,
        share: float | None = None,
        baseline: int | None = None,
        force: bool = False,
    ) -> Rollout:
        """Put ``version`` on live traffic beside the baseline (the champion unless an A/B test
        names another version). A rollout already running is stopped (superseded). A version
        the gate rejected needs ``force``."""
        if strategy == Strategy.SWAP:
            raise ValidationError("a swap is a promotion; use promote", field="strategy")
        self._servable(model, version, "rolled out", force=force)
        if baseline is not None:
            if strategy != Strategy.AB:
                raise ValidationError("only an A/B test takes another baseline than the champion", field="baseline")
            self._servable(model, baseline, "a baseline")
        with self.db.write() as conn:
            current = model_repo.get_model(conn, model)
            deployment = model_repo.get_deployment(conn, model, for_update=True)
            base = baseline if baseline is not None else deployment.champion_version
            if base is None:
                raise ConflictError(f"model {model!r} has no champion to roll out beside")
            if base == version:
                raise ConflictError(f"version {version} is the baseline already; a rollout needs two versions")
            policy = settings or current.policy
            steps = policy.rollout.steps
            if strategy == Strategy.CANARY:
                first = steps[0] if share is None else share
            elif strategy == Strategy.SHADOW:
                first = policy.rollout.shadow_share if share is None else share
            else:
                first = 0.5 if share is None else share
            if not 0 < first <= 1 or (strategy != Strategy.SHADOW and first >= 1):
                raise ValidationError(f"share must be in (0, 1), got {first}", field="share")
            now = self.clock.now()
            live = rollout_repo.active_rollout(conn, model, for_update=True)
            if live is not None:
                self._end_rollout(
                    conn, live, RolloutStatus.STOPPED, actor, f"superseded by a rollout of {version}", None
                )
            rollout_id = rollout_repo.insert_rollout(
                conn,
                model=model,
                version=version,
                baseline_version=base,
                strategy=strategy,
                share=first,
                steps=steps if strategy == Strategy.CANARY else (first,),
                settings=policy,
                actor=actor,
                reason=reason,
                at=now,
            )
            model_repo.set_version_status(
                conn, model, version, VersionStatus.CHALLENGER, f"{strategy.value} rollout {rollout_id}", now
            )
            model_repo.bump_revision(conn, model, now)
            event_repo.insert_event(
                conn,
                model=model,
                kind="rollout_started",
                version=version,
                at=now,
                actor=actor,
                reason=reason,
                data={"rollout": rollout_id, "strategy": strategy.value, "share": first, "baseline": base},
            )
            rollout = rollout_repo.get_rollout(conn, model, rollout_id)
        log.info("model %s: %s rollout %s of version %s at %.0f%%", model, strategy, rollout_id, version, 100 * first)
        self.routing_changed(model)
        return rollout

    def set_rollout_paused(
        self, model: str, rollout_id: int, paused: bool, *, actor: str, reason: str | None = None
    ) -> Rollout:
        """Pause (traffic stays as it is; nothing automatic but guardrails) or resume a rollout."""
        want, kind = (RolloutStatus.PAUSED, "rollout_paused") if paused else (RolloutStatus.RUNNING, "rollout_resumed")
        with self.db.write() as conn:
            rollout = rollout_repo.get_rollout(conn, model, rollout_id, for_update=True)
            if not rollout.status.active:
                raise ConflictError(f"rollout {rollout_id} of {model!r} has ended ({rollout.status.value})")
            if rollout.status == want:
                raise ConflictError(f"rollout {rollout_id} of {model!r} is {want.value} already")
            now = self.clock.now()
            # A resumed canary's step clock restarts: the time paused does not count as time on the step.
            rollout_repo.update_rollout(conn, rollout_id, status=want, updated_at=now, step_started_at=now)
            event_repo.insert_event(
                conn,
                model=model,
                kind=kind,
                version=rollout.version,
                at=now,
                actor=actor,
                reason=reason,
                data={"rollout": rollout_id, "share": rollout.share},
            )
            return rollout_repo.get_rollout(conn, model, rollout_id)

    def record_rollout_look(
        self, rollout: Rollout, *, step_to: float | None, reason: str, stats: dict[str, Any]
    ) -> float:
        """Store the controller's latest look at a rollout and, with ``step_to``, move a running
        canary to its next share; ``ConflictError`` if the rollout changed since it was read.
        Returns the share on the challenger now."""
        with self.db.write() as conn:
            current = rollout_repo.get_rollout(conn, rollout.model, rollout.id, for_update=True)
            if not current.status.active or current.step != rollout.step:
                raise ConflictError(f"rollout {rollout.id} changed while it was being looked at")
            now = self.clock.now()
            if step_to is None or current.status != RolloutStatus.RUNNING:
                rollout_repo.update_rollout(conn, rollout.id, stats=stats, updated_at=now)
                return current.share
            rollout_repo.update_rollout(
                conn, rollout.id, share=step_to, step=rollout.step + 1, step_started_at=now, updated_at=now, stats=stats
            )
            model_repo.bump_revision(conn, rollout.model, now)
            event_repo.insert_event(
                conn,
                model=rollout.model,
                kind="rollout_step",
                version=rollout.version,
                at=now,
                actor=f"rollout:{rollout.id}",
                reason=reason,
                data={"rollout": rollout.id, "from": rollout.share, "to": step_to, "stats": stats},
            )
        self.routing_changed(rollout.model)
        return step_to

    def end_rollout(
        self,
        model: str,
        rollout_id: int,
        status: RolloutStatus,
        *,
        actor: str,
        reason: str | None,
        stats: dict[str, Any] | None = None,
    ) -> Rollout:
        """Stop, conclude or roll back a rollout (promotion goes through ``promote``)."""
        with self.db.write() as conn:
            rollout = rollout_repo.get_rollout(conn, model, rollout_id, for_update=True)
            if not rollout.status.active:
                raise ConflictError(f"rollout {rollout_id} of {model!r} has ended ({rollout.status.value})")
            self._end_rollout(conn, rollout, status, actor, reason, stats)
            result = rollout_repo.get_rollout(conn, model, rollout_id)
        self.routing_changed(model)
        return result

    def _end_rollout(
        self,
        conn: Connection,
        rollout: Rollout,
        status: RolloutStatus,
        actor: str,
        reason: str | None,
        stats: dict[str, Any] | None,
        *,
        event: bool = True,
    ) -> None:
        now = self.clock.now()
        rollout_repo.update_rollout(
            conn,
            rollout.id,
            status=status,
            reason=reason,
            ended_at=now,
            updated_at=now,
            share=0.0 if status != RolloutStatus.PROMOTED else 1.0,
            **({"stats": stats} if stats is not None else {}),
        )
        if status == RolloutStatus.ROLLED_BACK:
            model_repo.set_version_status(
                conn,
                rollout.model,
                rollout.version,
                VersionStatus.REJECTED,
                f"rolled back: {reason or 'no reason given'}",
                now,
            )
        elif status != RolloutStatus.PROMOTED:
            model_repo.set_version_status(
                conn,
                rollout.model,
                rollout.version,
                VersionStatus.CANDIDATE,
                f"rollout {status.value}: {reason}",
                now,
            )
        model_repo.bump_revision(conn, rollout.model, now)
        if event:
            event_repo.insert_event(
                conn,
                model=rollout.model,
                kind="rolled_back" if status == RolloutStatus.ROLLED_BACK else f"rollout_{status.value}",
                version=rollout.version,
                at=now,
                actor=actor,
                reason=reason,
                data={
                    "rollout": rollout.id,
                    "strategy": rollout.strategy.value,
                    "from": rollout.version,
                    "to": rollout.baseline_version,
                    "stats": stats if stats is not None else rollout.stats,
                },
            )
        log.info("model %s: rollout %s %s by %s (%s)", rollout.model, rollout.id, status.value, actor, reason)

    def rollback(self, model: str, *, actor: str, reason: str | None = None) -> Deployment:
        """Take the newest change off traffic: a running rollout's challenger, else the
        champion (back to the previous one, which stays loaded)."""
        with self.db.write() as conn:
            deployment = model_repo.get_deployment(conn, model, for_update=True)
            live = rollout_repo.active_rollout(conn, model, for_update=True)
            if live is not None:
                self._end_rollout(conn, live, RolloutStatus.ROLLED_BACK, actor, reason, None)
                result = model_repo.get_deployment(conn, model)
            else:
                result = self._rollback_champion(conn, model, deployment, actor, reason)
        self.routing_changed(model)
        return result

    def _rollback_champion(
        self, conn: Connection, model: str, deployment: Deployment, actor: str, reason: str | None
    ) -> Deployment:
        if deployment.previous_version is None or deployment.champion_version is None:
            raise ConflictError(f"model {model!r} has no running rollout and no previous champion to roll back to")
        bad, good = deployment.champion_version, deployment.previous_version
        model_repo.get_version(conn, model, good).check_artifact()  # retention never prunes it; a guard
        now = self.clock.now()
        model_repo.set_deployment(conn, model, good, None, now)
        model_repo.set_version_status(conn, model, good, VersionStatus.CHAMPION, f"restored by rollback of {bad}", now)
        model_repo.set_version_status(
            conn, model, bad, VersionStatus.RETIRED, f"rolled back: {reason or 'no reason given'}", now
        )
        event_repo.insert_event(
            conn,
            model=model,
            kind="rolled_back",
            version=good,
            at=now,
            actor=actor,
            reason=reason,
            data={"from": bad, "to": good},
        )
        log.info("model %s: rolled back from %s to %s by %s (%s)", model, bad, good, actor, reason)
        return model_repo.get_deployment(conn, model)

    def routing_changed(self, model: str) -> None:
        """Reload this process's route now (other processes poll the revision)."""
        if self._on_routing_change is not None:
            try:
                self._on_routing_change(model)
            except Exception:  # the change is committed; other processes pick it up by polling
                log.exception("refreshing routes of %s after a change failed", model)
