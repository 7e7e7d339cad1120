"""The retrain pipeline, as named steps: ``gather`` what the retrain starts from (the
database's part) -> the task's ``train`` in the training process (curate -> fit -> evaluate ->
judge: ``learnloop.tasks``) -> ``record`` the snapshot -> ``register`` the candidate ->
``deploy`` it per the policy (swap, or a canary, shadow or A/B rollout)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from learnloop import __version__
from learnloop.artifacts import ArtifactStore
from learnloop.clock import Clock
from learnloop.domain import Model, ModelVersion, Strategy, TrainingCost, VersionStatus
from learnloop.evaluation.headline import verdict_headline
from learnloop.families import get_family
from learnloop.families.causal_lm.tuning import import_stack
from learnloop.registry.service import RegistryService
from learnloop.store.db import Database
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import models as model_repo
from learnloop.store.repositories import snapshots as snapshot_repo
from learnloop.tasks import Candidate, RetrainInputs, train
from learnloop.training.cost import measured
from learnloop.training.runner import TrainingRunner
from learnloop.training.study_tables import ensure_study_tables

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]


def _no_progress(fraction: float, message: str) -> None:
    pass


def within(progress: Progress, low: float, high: float) -> Progress:
    """``progress`` for a part of the work that spans ``low`` to ``high`` of the whole."""

    def scaled(fraction: float, message: str) -> None:
        progress(low + (high - low) * min(max(fraction, 0.0), 1.0), message)

    return scaled


@dataclass(frozen=True)
class RetrainOutcome:
    version: int
    promoted: bool
    verdict: dict[str, Any]
    snapshot: str
    rollout: int | None = None  # the rollout that puts it on live traffic (canary, shadow, ab)
    strategy: str = "swap"  # how a version that passed reaches traffic
    cost: TrainingCost | None = None  # what the fit cost (``training.cost``)

    @property
    def summary(self) -> str:
        """One line, the deciding words first: what became of the candidate, and why."""
        headline = verdict_headline(self.verdict)
        if self.promoted:
            return f"version {self.version} promoted; {headline}"
        if self.rollout is not None:
            return f"version {self.version} on {self.strategy} rollout {self.rollout}; {headline}"
        if not self.verdict.get("passed", True):
            return f"version {self.version} {headline}"  # "version 3 rejected: ..."
        return f"version {self.version} not promoted (auto-promotion is off); {headline}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "promoted": self.promoted,
            "rollout": self.rollout,
            "verdict": self.verdict,
            "snapshot": self.snapshot,
            "summary": self.summary,
            "cost": None if self.cost is None else self.cost.to_dict(),
        }


class TrainingService:
    def __init__(
        self,
        db: Database,
        store: ArtifactStore,
        artifact_url: str,
        registry: RegistryService,
        runner: TrainingRunner,
        clock: Clock,
        bases_dir: Path | None = None,
        threads: int = 1,
    ) -> None:
        self.db = db
        self.store = store
        self.artifact_url = artifact_url  # the training process opens the store from it
        self.registry = registry
        self.runner = runner
        self.clock = clock
        self.bases_dir = str(bases_dir or "")  # where a generative model's base is converted, once per home
        self.threads = threads  # torch threads of a generative fit (``GenerationSettings.train_threads``)

    # -- the steps ------------------------------------------------------------------------
    def first_inputs(
        self, model: Model, bootstrap: list[tuple[str, str]], golden: list[tuple[str, str]], now: datetime, key: str
    ) -> RetrainInputs:
        """What version 1 starts from (the model need not be stored yet)."""
        return RetrainInputs(
            model=model,
            champion=None,
            champion_cutoff=None,
            cutoff=now,
            bootstrap=bootstrap,
            golden=golden,
            feedback=[],
            artifact_url=self.artifact_url,
            artifact_key=key,
            bases_dir=self.bases_dir,
            study_url=self.db.url,
            threads=self.threads,
        )

    def warm(self) -> None:
        """When a model here fits LoRA adapters, start the training process now with the ML
        stack imported, so the first retrain does not wait for it (in the background)."""
        with self.db.read() as conn:
            models = model_repo.list_models(conn)
        if any(m.task == "generation" and get_family(m.family).trainable for m in models):
            self.runner.warm(import_stack)

    def gather(self, name: str, now: datetime) -> RetrainInputs:
        """What a retrain starts from: the model, its champion and the cutoff of the champion's
        snapshot, the model's own rows, and every feedback event up to ``now`` with the answer
        it is about."""
        with self.db.read() as conn:
            model = model_repo.get_model(conn, name)
            number = model_repo.get_deployment(conn, name).champion_version
            champion = model_repo.get_version(conn, name, number) if number is not None else None
            known = None
            if champion is not None and champion.snapshot_hash:
                known = snapshot_repo.get_snapshot(conn, champion.snapshot_hash)
            return RetrainInputs(
                model=model,
                champion=champion,
                champion_cutoff=known.cutoff if known else None,
                cutoff=now,
                bootstrap=model_repo.load_examples(conn, name, "train"),
                golden=model_repo.load_examples(conn, name, "golden"),
                golden_metadata=model_repo.load_example_metadata(conn, name, "golden"),
                feedback=feedback_repo.feedback_with_predictions(conn, name, now, snapshot=True),
                artifact_url=self.artifact_url,
                artifact_key=f"models/{name}/{now.strftime('%Y%m%dT%H%M%S%f')}",
                bases_dir=self.bases_dir,
                study_url=self.db.url,
                threads=self.threads,
            )

    def train(
        self, inputs: RetrainInputs, progress: Progress = _no_progress, *, span: tuple[float, float] = (0.0, 1.0)
    ) -> Candidate:
        """The task's ``train``, where the runner runs training work (the training process);
        what it reports reaches ``progress`` scaled into ``span``."""
        if inputs.model.policy.selection.searched:  # the search keeps its studies in this database
            ensure_study_tables(self.db)
        candidate, cost = self.runner.run(measured, (train, inputs), within(progress, *span))
        return replace(candidate, cost=cost)

    def record(self, name: str, candidate: Candidate) -> None:
        """The snapshot the candidate was trained on (its rows are in the store already)."""
        self.registry.record_snapshot(
            name,
            hash=candidate.snapshot_hash,
            key=candidate.snapshot_key,
            counts=candidate.snapshot_counts,
            cutoff=candidate.snapshot_cutoff,
        )

    def draft(self, inputs: RetrainInputs, candidate: Candidate, reason: str) -> ModelVersion:
        """The version a candidate becomes (numbered when registered)."""
        model = inputs.model
        return ModelVersion(
            model=model.name,
            version=0,
            status=VersionStatus.CANDIDATE if candidate.passed else VersionStatus.REJECTED,
            family=candidate.family or model.family,  # a selection among candidates may choose another
            params=model.params if candidate.params is None else candidate.params,
            snapshot_hash=candidate.snapshot_hash,
            parent_version=None if inputs.champion is None else inputs.champion.version,
            code_version=__version__,
            metrics=candidate.metrics,
            verdict=candidate.verdict,
            artifact_uri=candidate.artifact_key,
            created_at=self.clock.now(),
            status_reason=reason,
            train_seconds=candidate.train_seconds,
            cost=candidate.cost,
        )

    def register(self, inputs: RetrainInputs, candidate: Candidate, *, actor: str, reason: str) -> ModelVersion:
        return self.registry.register(self.draft(inputs, candidate, reason), actor=actor)

    def deploy(self, inputs: RetrainInputs, version: ModelVersion, reasons: list[str]) -> tuple[bool, int | None]:
        """Put a candidate that passed on traffic per the policy: (promoted, rollout id)."""
        policy = inputs.model.policy
        if version.status == VersionStatus.REJECTED or not policy.gate.auto_promote:
            return False, None
        reason = "passed the offline gate: " + "; ".join(reasons)
        strategy = Strategy(policy.rollout.strategy)
        if strategy == Strategy.SWAP:
            self.registry.promote(version.model, version.version, actor="gate", reason=reason)
            return True, None
        rollout = self.registry.start_rollout(version.model, version.version, strategy, actor="gate", reason=reason)
        return False, rollout.id

    # -- the pipelines --------------------------------------------------------------------
    def bootstrap(self, name: str, progress: Progress = _no_progress) -> ModelVersion:
        """Train, evaluate and crown version 1 from the rows of a stored model (tests and
        scripts; ``learnloop init`` and ``POST /v1/models`` create a model all or nothing with
        ``models.ModelCreation``)."""
        now = self.clock.now()
        with self.db.read() as conn:
            model = model_repo.get_model(conn, name)
            rows = model_repo.load_examples(conn, name, "train"), model_repo.load_examples(conn, name, "golden")
        inputs = self.first_inputs(model, *rows, now, f"models/{name}/v1-{now.strftime('%Y%m%dT%H%M%S%f')}")
        progress(0.1, f"training on {len(inputs.bootstrap)} rows")
        candidate = self.train(inputs, progress, span=(0.1, 0.8))
        self.record(name, candidate)
        progress(0.8, "; ".join(candidate.notes))
        version = self.register(inputs, candidate, actor="init", reason="bootstrap version")
        self.registry.promote(name, version.version, actor="init", reason="bootstrap version")
        self.registry.mark_retrain(name, watermark=now, started=False)
        progress(1.0, "done")
        return self.registry.version(name, version.version)

    def retrain(self, name: str, *, actor: str, progress: Progress = _no_progress) -> RetrainOutcome:
        now = self.clock.now()
        # Feedback strictly before now is in this snapshot: the trigger counts from now on
        # (at-or-after, so what is stamped now, even after this read, is counted once, then
        # trained on and judged by the next retrain), whatever the outcome (the cooldown stops a
        # rejected candidate from looping).
        self.registry.mark_retrain(name, watermark=now)
        inputs = self.gather(name, now)
        progress(0.05, f"curating {len(inputs.feedback)} feedback events and training in the training process")
        candidate = self.train(inputs, progress, span=(0.05, 0.8))
        self.record(name, candidate)
        progress(0.8, "; ".join(candidate.notes) + "; judged against the champion")
        verdict = candidate.verdict or {
            "passed": True,
            "decision": "promote",
            "reasons": ["no champion to compare with"],
        }
        reason = "; ".join([verdict_headline(verdict), *verdict["reasons"]])  # the deciding words first
        version = self.register(inputs, candidate, actor=actor, reason=reason)
        promoted, rollout = self.deploy(inputs, version, verdict["reasons"])
        strategy = inputs.model.policy.rollout.strategy
        outcome = RetrainOutcome(
            version.version, promoted, verdict, candidate.snapshot_hash, rollout, strategy, candidate.cost
        )
        progress(1.0, outcome.summary)
        return outcome
