"""The retrain pipeline: snapshot -> train -> evaluate -> gate -> register -> swap."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from learnloop import __version__
from learnloop.clock import Clock
from learnloop.domain import Model, ModelVersion, Strategy, VersionStatus
from learnloop.errors import InsufficientDataError
from learnloop.evaluation import (
    classification_metrics,
    judge,
    latency_percentiles,
    paired_comparison,
    paired_metric_differences,
)
from learnloop.evaluation.gate import slice_comparisons
from learnloop.families import get_family
from learnloop.monitoring import reference as drift_reference
from learnloop.registry.artifacts import ArtifactStore
from learnloop.registry.service import RegistryService
from learnloop.store.db import Database
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import models as model_repo
from learnloop.store.repositories import snapshots as snapshot_repo
from learnloop.tasks.classification import Snapshot, build_snapshot
from learnloop.tasks.classification.noise import ProbabilisticModel
from learnloop.tasks.classification.resolve import curate_feedback
from learnloop.tasks.classification.snapshot import snapshot_key
from learnloop.training.fit import FoldSpec, TrainResult, TrainSpec
from learnloop.training.runner import TrainingRunner

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


def _no_progress(fraction: float, message: str) -> None:
    pass


def _version_metrics(
    model: Model, result: TrainResult, truths: dict[str, list[str]], snapshot: Snapshot
) -> dict[str, Any]:
    """The candidate's metrics on each evaluation set (with bootstrap intervals), its
    ``predict_one`` latency and the data it was trained on."""
    metrics: dict[str, Any] = {
        name: classification_metrics(
            truth,
            result.candidate[name],
            model.labels,
            result.candidate_proba[name],
            bootstrap=BOOTSTRAP_RESAMPLES,
            seed=BOOTSTRAP_SEED,
        )
        for name, truth in truths.items()
    }
    metrics["latency"] = latency_percentiles(result.latency_ms)
    metrics["train_examples"] = len(snapshot.train)
    metrics["feedback_weight"] = model.policy.curation.feedback_weight
    metrics["snapshot_counts"] = snapshot.counts
    metrics[drift_reference.METRICS_KEY] = result.drift_reference_uri
    if result.drift_reference_error:
        metrics[drift_reference.METRICS_ERROR_KEY] = result.drift_reference_error
    return metrics


def _weights(snapshot: Snapshot, feedback_weight: float) -> list[float] | None:
    """Per-example training weights: ``feedback_weight`` times the weight curation gave the
    example (trust, noise filter) for feedback, 1 for bootstrap rows; ``None`` when all are 1."""
    weights = [1.0 if ex.source == "bootstrap" else feedback_weight * ex.weight for ex in snapshot.train]
    return None if all(w == 1.0 for w in weights) else weights


class _FamilyFit:
    """The model's family as the noise filter's ``FitFunction`` (its cross-validation fits)."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def __call__(self, texts: Sequence[str], labels: Sequence[str], *, seed: int) -> ProbabilisticModel:
        family = get_family(self.model.family)
        return family.fit(texts, labels, label_set=list(self.model.labels), params=self.model.params, seed=seed)


@dataclass(frozen=True)
class FirstVersion:
    """Version 1, fitted and scored, before anything about it is stored in the database."""

    snapshot: Snapshot
    snapshot_uri: str
    draft: ModelVersion  # number 0 until registered


@dataclass(frozen=True)
class RetrainOutcome:
    version: int
    promoted: bool
    verdict: dict[str, Any]
    snapshot: str
    rollout: int | None = None  # the rollout that puts it on live traffic (canary, shadow, ab)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "promoted": self.promoted,
            "rollout": self.rollout,
            "verdict": self.verdict,
            "snapshot": self.snapshot,
        }


class TrainingService:
    def __init__(
        self,
        db: Database,
        store: ArtifactStore,
        artifact_root: str,
        registry: RegistryService,
        runner: TrainingRunner,
        clock: Clock,
    ) -> None:
        self.db = db
        self.store = store
        self.artifact_root = artifact_root
        self.registry = registry
        self.runner = runner
        self.clock = clock

    def _save_snapshot(self, model: str, snapshot: Snapshot) -> None:
        self._record_snapshot(
            model, snapshot, self.store.put_bytes(snapshot_key(model, snapshot.hash), snapshot.to_jsonl_gz())
        )

    def _record_snapshot(self, model: str, snapshot: Snapshot, uri: str) -> None:
        with self.db.write() as conn:
            snapshot_repo.upsert_snapshot(
                conn,
                hash=snapshot.hash,
                model=model,
                uri=uri,
                counts=snapshot.counts,
                cutoff=snapshot.cutoff,
                at=self.clock.now(),
            )

    def _spec(
        self,
        model: Model,
        snapshot: Snapshot,
        eval_sets: dict[str, list[str]],
        champion_uri: str | None,
        key: str,
    ) -> TrainSpec:
        return TrainSpec(
            family=model.family,
            params=model.params,
            label_set=list(model.labels),
            texts=[ex.text for ex in snapshot.train],
            labels=[ex.label for ex in snapshot.train],
            eval_sets=eval_sets,
            artifact_root=self.artifact_root,
            artifact_key=key,
            champion_uri=champion_uri,
            manifest_extra={"model": model.name, "snapshot": snapshot.hash},
            folds=[FoldSpec(fold.train, fold.evaluate) for fold in snapshot.folds],
            weights=_weights(snapshot, model.policy.curation.feedback_weight),
            drift_reference_key=drift_reference.reference_key(model.name, key),
        )

    def bootstrap(self, name: str, progress: Progress = _no_progress) -> ModelVersion:
        """Train, evaluate and crown version 1 from the bootstrap data of a stored model."""
        with self.db.read() as conn:
            model = model_repo.get_model(conn, name)
            train = model_repo.load_examples(conn, name, "train")
            golden = model_repo.load_examples(conn, name, "golden")
        now = self.clock.now()
        snapshot = self.first_snapshot(model, train, golden, now)
        first = self.fit_first(model, snapshot, golden, key=f"models/{name}/{snapshot.hash[:16]}-v1", progress=progress)
        self._record_snapshot(name, snapshot, first.snapshot_uri)
        version = self.registry.register(first.draft, actor="init")
        self.registry.promote(name, version.version, actor="init", reason="bootstrap version")
        with self.db.write() as conn:
            model_repo.update_model(conn, name, retrain_watermark=now)
        progress(1.0, "done")
        return self.registry.version(name, version.version)

    @staticmethod
    def first_snapshot(
        model: Model, train: list[tuple[str, str]], golden: list[tuple[str, str]], now: datetime
    ) -> Snapshot:
        """Version 1's snapshot: the bootstrap data, curated (no I/O)."""
        return build_snapshot(
            bootstrap=train,
            feedback=[],
            golden_texts=[t for t, _ in golden],
            champion_cutoff=None,
            cutoff=now,
            policy=model.policy,
        )

    def fit_first(
        self, model: Model, snapshot: Snapshot, golden: list[tuple[str, str]], *, key: str, progress: Progress
    ) -> FirstVersion:
        """Fit and score version 1 of ``model`` (stored or not yet). Writes artifacts only: the
        snapshot's rows, the version under ``key`` and its drift reference; the caller stores
        the records."""
        progress(0.1, f"snapshot {snapshot.hash[:12]}: {len(snapshot.train)} training examples")
        snapshot_uri = self.store.put_bytes(snapshot_key(model.name, snapshot.hash), snapshot.to_jsonl_gz())
        progress(0.2, "training")
        result = self.runner.run(self._spec(model, snapshot, {"golden": [t for t, _ in golden]}, None, key))
        progress(0.8, "evaluating on the golden set")
        metrics = _version_metrics(model, result, {"golden": [lab for _, lab in golden]}, snapshot)
        draft = ModelVersion(
            model=model.name,
            version=0,
            status=VersionStatus.CANDIDATE,
            family=model.family,
            params=model.params,
            snapshot_hash=snapshot.hash,
            parent_version=None,
            code_version=__version__,
            metrics=metrics,
            verdict=None,
            artifact_uri=result.artifact_uri,
            created_at=self.clock.now(),
            status_reason="bootstrap version",
            train_seconds=result.train_seconds,
        )
        return FirstVersion(snapshot, snapshot_uri, draft)

    def retrain(self, name: str, *, actor: str, progress: Progress = _no_progress) -> RetrainOutcome:
        now = self.clock.now()
        with self.db.write() as conn:
            model = model_repo.get_model(conn, name)
            # Feedback up to now is in this snapshot: the trigger counts from here again,
            # whatever the outcome (the cooldown stops a rejected candidate from looping).
            model_repo.update_model(conn, name, retrain_watermark=now, last_retrain_at=now)
        with self.db.read() as conn:
            deployment = model_repo.get_deployment(conn, name)
            champion = (
                model_repo.get_version(conn, name, deployment.champion_version) if deployment.champion_version else None
            )
            champion_snapshot = (
                snapshot_repo.get_snapshot(conn, champion.snapshot_hash)
                if champion and champion.snapshot_hash
                else None
            )
            bootstrap = model_repo.load_examples(conn, name, "train")
            golden = model_repo.load_examples(conn, name, "golden")
            feedback_rows = feedback_repo.feedback_with_predictions(conn, name, now)
        progress(0.05, f"curating {len(feedback_rows)} feedback events")
        curated = curate_feedback(
            feedback_rows, model.labels, model.policy.curation, bootstrap=bootstrap, fit=_FamilyFit(model)
        )
        snapshot = build_snapshot(
            bootstrap=bootstrap,
            feedback=curated.examples,
            golden_texts=[t for t, _ in golden],
            champion_cutoff=champion_snapshot["cutoff"] if champion_snapshot else None,
            cutoff=now,
            policy=model.policy,
            feedback_counts=curated.feedback_counts,
            curation=curated.counts,
        )
        if len(snapshot.train) < model.policy.curation.min_train_examples:
            raise InsufficientDataError(
                f"snapshot has {len(snapshot.train)} training examples; policy.min_train_examples is "
                f"{model.policy.curation.min_train_examples}. The champion is unchanged."
            )
        if len({ex.label for ex in snapshot.train}) < 2:
            raise InsufficientDataError("snapshot has a single label; the champion is unchanged")
        self._save_snapshot(name, snapshot)
        progress(
            0.15,
            f"snapshot {snapshot.hash[:12]}: {snapshot.counts['train']} train; {len(snapshot.folds)} forward-chaining "
            f"folds over {len(snapshot.recent)} recent events",
        )
        eval_sets = {
            "golden": [t for t, _ in golden],
            "recent": [ex.text for ex in snapshot.recent],
        }
        key = f"models/{name}/{snapshot.hash[:16]}-{now.strftime('%Y%m%dT%H%M%S%f')}"
        result = self.runner.run(
            self._spec(model, snapshot, eval_sets, champion.artifact_uri if champion else None, key)
        )
        progress(0.8, f"trained in {result.train_seconds:.1f}s; judging against the champion")

        golden_truth = [lab for _, lab in golden]
        recent_truth = [ex.label for ex in snapshot.recent]
        metrics = _version_metrics(model, result, {"golden": golden_truth, "recent": recent_truth}, snapshot)
        if result.champion is not None and champion is not None:
            golden_cmp = paired_comparison(
                "golden",
                golden_truth,
                result.champion["golden"],
                result.candidate["golden"],
                confidence=1 - 2 * model.policy.gate.alpha,
            )
            recent_cmp = (
                paired_comparison(
                    "recent",
                    recent_truth,
                    result.champion["recent"],
                    result.candidate["recent"],
                    confidence=1 - 2 * model.policy.gate.alpha,
                )
                if snapshot.recent
                else None
            )
            # The other metrics' paired differences, with intervals at the accuracy test's
            # confidence; on the golden set they decide (non-inferiority), on recent they inform.
            secondary = {
                name: paired_metric_differences(
                    truth,
                    result.champion_proba[name],
                    result.candidate_proba[name],
                    model.labels,
                    resamples=BOOTSTRAP_RESAMPLES,
                    confidence=1 - 2 * model.policy.gate.alpha,
                    seed=BOOTSTRAP_SEED,
                )
                for name, truth in (("golden", golden_truth), ("recent", recent_truth))
                if truth and result.champion_proba is not None
            }
            slices = slice_comparisons(
                [ex.metadata for ex in snapshot.recent],
                recent_truth,
                result.champion["recent"],
                result.candidate["recent"],
                model.policy.gate.slices,
                confidence=1 - 2 * model.policy.gate.alpha,
            )
            verdict = judge(
                golden_cmp, recent_cmp, model.policy, golden_secondary=secondary.get("golden"), slices=slices
            )
            verdict_dict = {**verdict.to_dict(), "champion_version": champion.version, "secondary": secondary}
            passed = verdict.passed
        else:
            verdict_dict = {
                "passed": True,
                "decision": "promote",
                "reasons": ["no champion to compare with"],
            }
            passed = True
        status = VersionStatus.CANDIDATE if passed else VersionStatus.REJECTED
        version = self.registry.register(
            ModelVersion(
                model=name,
                version=0,
                status=status,
                family=model.family,
                params=model.params,
                snapshot_hash=snapshot.hash,
                parent_version=champion.version if champion else None,
                code_version=__version__,
                metrics=metrics,
                verdict=verdict_dict,
                artifact_uri=result.artifact_uri,
                created_at=self.clock.now(),
                status_reason="; ".join(verdict_dict["reasons"]),
                train_seconds=result.train_seconds,
            ),
            actor=actor,
        )
        promoted, rollout = False, None
        if passed and model.policy.gate.auto_promote:
            reason = "passed the offline gate: " + "; ".join(verdict_dict["reasons"])
            strategy = Strategy(model.policy.rollout.strategy)
            if strategy == Strategy.SWAP:
                self.registry.promote(name, version.version, actor="gate", reason=reason)
                promoted = True
            else:
                rollout = self.registry.start_rollout(name, version.version, strategy, actor="gate", reason=reason).id
        outcome = (
            "promoted"
            if promoted
            else f"on {model.policy.rollout.strategy} rollout {rollout}"
            if rollout
            else status.value
        )
        progress(1.0, f"version {version.version} {outcome}")
        return RetrainOutcome(version.version, promoted, verdict_dict, snapshot.hash, rollout)
