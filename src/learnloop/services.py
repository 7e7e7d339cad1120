"""The composition root: ``build_services(settings)`` makes every long-lived object once.

Edges (HTTP app, CLI, worker process, tests) call this and then only talk to the services.
Nothing is created at import time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

from learnloop.access import AccessService
from learnloop.artifacts import ArtifactStore, open_store
from learnloop.clock import Clock, SystemClock
from learnloop.config import Settings
from learnloop.explanations import ExplanationService
from learnloop.feedback.asking import ActiveLearningService
from learnloop.feedback.generate import GenerationService
from learnloop.feedback.generations import GenerationLog
from learnloop.feedback.ingest import IngestWriter
from learnloop.feedback.service import FeedbackService, PredictionService
from learnloop.jobs.service import JobService
from learnloop.models import ModelCreation, ModelDeletion
from learnloop.monitoring.fairness import FairnessService
from learnloop.monitoring.patterns import CHECK_SECONDS, ErrorPatternService
from learnloop.monitoring.performance import PerformanceService
from learnloop.monitoring.readiness import DatabaseWatch, Readiness, stalled
from learnloop.monitoring.service import DUE_POLL_SECONDS, DriftService
from learnloop.monitoring.value import RetrainValueService
from learnloop.notify.service import NotificationService
from learnloop.privacy import PrivacyService
from learnloop.registry.service import RegistryService
from learnloop.registry.specs import ModelSpecs
from learnloop.reports import VersionReports
from learnloop.retention import RetentionService
from learnloop.rollout.service import RolloutService
from learnloop.routing.cache import ModelCache
from learnloop.routing.generators import LocalGeneratorPool
from learnloop.routing.shadow import ShadowRunner
from learnloop.store.db import Database
from learnloop.store.migrate import upgrade
from learnloop.telemetry import Metrics
from learnloop.training.pipeline import TrainingService
from learnloop.training.ray_runner import PAUSE_REFUSAL, RayRunner
from learnloop.training.runner import ChildProcessRunner, InProcessRunner, TrainingRunner
from learnloop.training.studies import StudyService
from learnloop.triggers import RetrainTriggers
from learnloop.worker import Worker

log = logging.getLogger(__name__)
RETENTION_SWEEP_SECONDS = 3600.0  # every model's retention policy applied hourly (and after each retrain)


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    metrics: Metrics
    store: ArtifactStore
    cache: ModelCache
    registry: RegistryService
    creation: ModelCreation
    deletion: ModelDeletion
    rollouts: RolloutService
    performance: PerformanceService
    patterns: ErrorPatternService
    fairness: FairnessService
    value: RetrainValueService
    privacy: PrivacyService
    drift: DriftService
    shadow: ShadowRunner
    ingest: IngestWriter
    predictions: PredictionService
    feedback: FeedbackService
    generations: GenerationLog
    generation: GenerationService
    generators: LocalGeneratorPool
    jobs: JobService
    training: TrainingService
    triggers: RetrainTriggers
    worker: Worker
    runner: TrainingRunner
    notify: NotificationService
    active: ActiveLearningService
    watch: DatabaseWatch
    reports: VersionReports
    studies: StudyService
    access: AccessService
    explanations: ExplanationService
    retention: RetentionService
    _routing_thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self, *, worker: bool = True) -> None:
        """Start an API replica's background work (the ingest writer, the database watch, the
        shadow runner, the loaded models and their route polling) and, unless ``worker`` is
        False, a worker."""
        self.ingest.start()
        self.watch.start()
        self.shadow.start()
        self.cache.serve()
        self._routing_thread = threading.Thread(target=self._poll_routes, name="learnloop-routes", daemon=True)
        self._routing_thread.start()
        if worker:
            self.worker.start()
            self._warm_training()

    def run_worker(self, until: threading.Event) -> None:
        """Be a worker process and nothing else (``learnloop worker``): jobs, triggers,
        rollouts, drift checks and notifications, on the worker's thread until ``until`` is set
        (the command's SIGINT or SIGTERM); ``close`` then stops it as a server's shutdown does (a
        fit in progress ends, its job is handed back to the queue). No ingest writer, shadow runner,
        loaded models or route polling: those serve requests."""
        self._warm_training()
        self.worker.start()
        while not until.wait(0.5):  # a timed wait: this thread also runs the signal handlers
            pass

    def _warm_training(self) -> None:
        """Where retrains run (a worker), the training process is started ahead of the first."""
        try:
            self.training.warm()
        except Exception:  # a training process that cannot start now fails the first retrain instead
            log.exception("warming the training process failed")

    def _poll_routes(self) -> None:
        while not self._stop.wait(self.settings.routing_poll_seconds):
            try:
                self.cache.refresh()
            except Exception:
                log.exception("route refresh failed")

    def health(self) -> dict[str, object]:
        """Liveness, from memory (never waits for the database): the last database check,
        what each model serves, and the write backlogs."""
        database = self.watch.status()
        models: dict[str, int | None] = {}
        unavailable: dict[str, str] = {}
        for name in self.cache.model_names():
            route = self.cache.route(name)
            models[name] = route.champion.version if route.champion else None
            if route.error:
                unavailable[name] = route.error
        ok = database == "ok" and not unavailable
        return {
            "status": "ok" if ok else "degraded",
            "pid": os.getpid(),  # which process answers: a launcher's readiness check proves it is its own
            "database": database,
            "models": models,
            "unavailable": unavailable,
            "prediction_log_backlog": self.ingest.prediction_backlog,
            "feedback_backlog": self.ingest.feedback_backlog,
        }

    def readiness(self) -> Readiness:
        """Whether this replica should get traffic, from memory: the database answers, no
        hot-path write has hung past ``ready_stall_seconds``, and every model whose champion
        is set could load it."""
        threshold = self.settings.ready_stall_seconds
        plog = self.ingest.predictions
        hung = plog.busy_since if plog.busy_since is not None else plog.failing_since
        checks = {
            "database": self.watch.status(),
            "prediction_log": stalled(hung, threshold, "writing"),
            "feedback": stalled(self.ingest.feedback_busy_since, threshold, "committing"),
        }
        routes = {name: self.cache.route(name) for name in self.cache.model_names()}
        broken = [f"{name}: {r.error}" for name, r in routes.items() if r.error and r.champion is None]
        checks["models"] = "; ".join(broken) or "ok"
        return Readiness(all(v == "ok" for v in checks.values()), checks)

    def refresh_gauges(self) -> None:
        self.metrics.prediction_queue.set(self.ingest.prediction_backlog)
        self.metrics.feedback_queue.set(self.ingest.feedback_backlog)
        self.metrics.job_queue.set(self.jobs.queue_depth())
        self.notify.refresh_gauge()
        for name in self.cache.model_names():
            champion = self.cache.route(name).champion
            if champion is not None:
                self.metrics.champion.labels(name).set(champion.version)

    def close(self) -> None:
        """Stop everything within about ``shutdown_timeout_seconds``: writes still pending
        then are cancelled (predictions dead-lettered, feedback never acknowledged)."""
        deadline = time.monotonic() + self.settings.shutdown_timeout_seconds
        self._stop.set()
        self.watch.close()
        self.worker.request_stop()
        self.runner.close()  # ends a fit in progress, so the worker thread can finish now
        self.ingest.close(timeout=max(1.0, deadline - time.monotonic() - 1.0))
        self.worker.stop(timeout=max(0.5, deadline - time.monotonic()))
        self.db.cancel_running()  # whatever still runs now (a worker query hung in a stalled database)
        self.notify.close()
        self.shadow.close()
        self.generators.close()  # requests still generating end with 503
        self.predictions.batcher.close()
        if self._routing_thread is not None:
            self._routing_thread.join(max(0.1, deadline - time.monotonic()))
        self.db.dispose()


def training_runner(settings: Settings) -> TrainingRunner:
    """Where fits run: in this process (``isolate_training`` off), a child process, or Ray tasks."""
    if not settings.isolate_training:
        return InProcessRunner()
    if settings.training_runner == "ray":
        return RayRunner(settings.ray_address, num_cpus=settings.ray_num_cpus)
    return ChildProcessRunner()


def build_services(settings: Settings, *, clock: Clock | None = None, migrate: bool = True) -> Services:
    clock = clock or SystemClock()
    settings.home.mkdir(parents=True, exist_ok=True)
    # a bad URL fails before the database is touched
    store = open_store(settings.resolved_artifact_url, settings.artifact_cache_dir)
    db = Database(settings.resolved_database_url, statement_timeout=settings.statement_timeout_seconds)
    if migrate:
        upgrade(db, home_artifacts=settings.home_artifacts_dir)
    metrics = Metrics()
    generators = LocalGeneratorPool(store, settings.bases_dir, settings.generation, metrics.generation)
    cache = ModelCache(db, store, generators)
    specs = ModelSpecs(db, ttl=settings.routing_poll_seconds)

    def routing_changed(model: str) -> None:
        specs.forget(model)
        cache.refresh_served(model)

    registry = RegistryService(db, store, clock, on_routing_change=routing_changed)
    limits = settings.limits
    ingest = IngestWriter(
        db,
        prediction_queue_max=limits.prediction_queue_max,
        feedback_queue_max=limits.feedback_queue_max,
        durable_predictions=settings.prediction_log == "durable",
        flush_rows=limits.prediction_flush_rows,
        flush_seconds=limits.prediction_flush_seconds,
        dead_letter=settings.home / "dead-letter" / "predictions.jsonl",
    )
    runner = training_runner(settings)
    training = TrainingService(
        db, store, store.url, registry, runner, clock, settings.bases_dir, settings.generation.train_threads
    )
    jobs = JobService(db, clock, running_pause_refusal=PAUSE_REFUSAL if isinstance(runner, RayRunner) else None)
    rollouts = RolloutService(db, registry, clock, metrics)
    shadow = ShadowRunner(db, metrics)
    triggers = RetrainTriggers(db, jobs, clock)
    retention = RetentionService(db, store, clock)
    worker = Worker(
        jobs,
        training,
        triggers,
        clock,
        metrics,
        rollouts,
        retention,
        trigger_poll_seconds=settings.trigger_poll_seconds,
        max_running_jobs=settings.max_running_jobs,
        lease_seconds=settings.job_lease_seconds,
        heartbeat_seconds=settings.job_heartbeat_seconds,
    )
    performance = PerformanceService(db, clock, metrics, triggers.on_finding)
    worker.every("performance", settings.performance_poll_seconds, performance.check_all)
    drift = DriftService(db, store, cache, clock, metrics, triggers.on_finding)
    worker.every("drift", DUE_POLL_SECONDS, drift.check_due)
    patterns = ErrorPatternService(db, clock)
    worker.every("error-patterns", CHECK_SECONDS, patterns.check_all)
    notify = NotificationService(db, clock, metrics)
    worker.every("notify", 1.0, notify.dispatch)
    worker.every("retention", RETENTION_SWEEP_SECONDS, retention.sweep)
    return Services(
        settings=settings,
        clock=clock,
        db=db,
        metrics=metrics,
        store=store,
        cache=cache,
        registry=registry,
        creation=ModelCreation(registry, training, store, clock, limits, settings.bases_dir),
        deletion=ModelDeletion(db, store, ingest, clock, on_routing_change=cache.refresh),
        rollouts=rollouts,
        performance=performance,
        patterns=patterns,
        fairness=FairnessService(db, clock, store),
        value=RetrainValueService(db, clock),
        privacy=PrivacyService(db, store, ingest, triggers.on_finding, clock, registry),
        drift=drift,
        shadow=shadow,
        ingest=ingest,
        predictions=PredictionService(cache, ingest, clock, metrics, limits, shadow),
        feedback=FeedbackService(db, specs, ingest, clock, metrics, limits),
        generations=GenerationLog(cache, ingest, clock, metrics, limits),
        generation=GenerationService(cache, ingest, clock, metrics, limits),
        generators=generators,
        jobs=jobs,
        training=training,
        triggers=triggers,
        worker=worker,
        runner=runner,
        notify=notify,
        active=ActiveLearningService(db),
        watch=DatabaseWatch(db, stall_seconds=settings.ready_stall_seconds),
        reports=VersionReports(db, store),
        studies=StudyService(db, registry, training, clock),
        access=AccessService(db, clock, settings, metrics),
        explanations=ExplanationService(db, store, cache, limits),
        retention=retention,
    )
