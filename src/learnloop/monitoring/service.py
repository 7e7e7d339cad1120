"""Drift checks of the serving version: its newest answers against the reference it was trained with.

``check(model)`` reads the newest ``policy.drift_window`` answers the champion gave (texts and
probabilities from the prediction log), runs every detector against the champion's reference
(``drift.reference``) with the champion's own feature map, stores the result
(``drift_checks``) and exports it to Prometheus. Alarms do not repeat: ``drift_detected`` is
written when a version goes from no drift to drift (its previous check did not alarm), and
``drift_resolved`` when a drifting version's check finds none; a ``drift_detected`` is reported
as a ``Finding``, and ``triggers`` decides whether a retrain follows (``policy.retrain_on_drift``,
and no rollout on live traffic). A version without a
reference is checked as ``no_reference`` (stored, counted, never an alarm). ``check_due()`` is
the worker's periodic entry (every ``DUE_POLL_SECONDS``): every model whose
``drift_check_seconds`` (0: never) have passed since its last check, or whose champion gave
``drift_check_answers`` (0: never) new answers since then, so drift shows as soon as enough
answers arrived rather than at the next tick of the timer. ``examples(model, check)`` are
window texts that show what a check saw drift.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any

from learnloop.artifacts import ArtifactStore
from learnloop.clock import Clock
from learnloop.domain import DriftCheck, Finding, FindingSink, Model, ModelVersion, Prediction
from learnloop.drift import FeatureMap, check_all
from learnloop.drift.examples import DriftExamples, drifted_examples, example_detector
from learnloop.drift.reference import METRICS_ERROR_KEY, METRICS_KEY, DriftReference, feature_map_of
from learnloop.errors import ConflictError, LearnloopError
from learnloop.routing.cache import ModelCache
from learnloop.store.db import Database
from learnloop.store.repositories import drift as drift_repo
from learnloop.store.repositories import events as event_repo
from learnloop.store.repositories import models as model_repo
from learnloop.store.repositories import predictions as prediction_repo
from learnloop.tasks import get_task
from learnloop.telemetry import Metrics

log = logging.getLogger(__name__)
DUE_POLL_SECONDS = 5.0  # how often the worker asks which models are due a check
ACTOR = "monitor:drift"


class DriftService:
    def __init__(
        self,
        db: Database,
        store: ArtifactStore,
        cache: ModelCache,
        clock: Clock,
        metrics: Metrics,
        report: FindingSink,
    ) -> None:
        self.db = db
        self.store = store
        self.cache = cache
        self.clock = clock
        self.metrics = metrics
        self.report = report  # where a drift alarm goes (``triggers``, which decides about a retrain)
        self._references: dict[str, tuple[str, DriftReference]] = {}  # model -> (uri, the latest read)

    def check(self, model: str) -> DriftCheck:
        """Check the champion now; store, export and (on a transition) alarm and report."""
        with self.db.read() as conn:
            spec = model_repo.get_model(conn, model)
            champion = model_repo.get_deployment(conn, model).champion_version
            if champion is None:
                raise ConflictError(f"model {model!r} has no champion to check for drift", field="model")
            version = model_repo.get_version(conn, model, champion)
            served = prediction_repo.served_window(conn, model, champion, spec.policy.monitoring.drift_window)
        reference = self._reference(version)
        results = [] if reference is None else self._results(spec, version, reference, served)
        with self.db.write() as conn:
            previous = drift_repo.latest_drift_check(conn, model, champion)
            check = drift_repo.insert_drift_check(
                conn,
                model=model,
                version=champion,
                n=len(served),
                window_start=served[-1].created_at if served else None,
                window_end=served[0].created_at if served else None,
                drifted=any(r["drifted"] for r in results),
                results=results,
                at=self.clock.now(),
            )
            kind = transition(previous, check)
            if kind is not None:
                event_repo.insert_event(
                    conn,
                    model=model,
                    kind=kind,
                    version=champion,
                    at=check.created_at,
                    actor=ACTOR,
                    reason=_reason(check),
                    data=event_data(check),
                )
        self._export(check)
        log.info("drift check of %s: %s", model, check.message, extra={"model": model, "version": champion})
        if kind == "drift_detected":
            with contextlib.suppress(ConflictError):  # a retrain is queued or running already
                self.report(Finding(model, "drift", _reason(check)))
        return check

    def check_due(self) -> list[DriftCheck]:
        """Check every model with a champion whose ``drift_check_seconds`` have passed since its
        last check (0: never); a failing model is logged and the others still checked."""
        now = self.clock.now()
        with self.db.read() as conn:
            models = model_repo.list_models(conn)
            champions = {d.model: d.champion_version for d in model_repo.list_deployments(conn)}
            last = {m.name: drift_repo.latest_drift_check(conn, m.name) for m in models}
        done = []
        for m in models:
            champion = champions.get(m.name)
            if champion is None or not self._due(m, champion, last[m.name], now):
                continue
            try:
                done.append(self.check(m.name))
            except Exception:
                log.exception("model %s: the drift check failed", m.name, extra={"model": m.name})
        return done

    def _due(self, model: Model, champion: int, previous: DriftCheck | None, now: datetime) -> bool:
        policy = model.policy.monitoring
        every, answers = policy.drift_check_seconds, policy.drift_check_answers
        if every > 0 and (previous is None or (now - previous.created_at).total_seconds() >= every):
            return True
        if answers <= 0:
            return False
        since = previous.created_at if previous is not None and previous.version == champion else None
        with self.db.read() as conn:
            return prediction_repo.count_served_since(conn, model.name, champion, since, answers) >= answers

    def history(self, model: str, limit: int = 20) -> list[DriftCheck]:
        """The model's newest ``limit`` checks, newest first."""
        with self.db.read() as conn:
            model_repo.get_model(conn, model)
            return drift_repo.list_drift_checks(conn, model, limit)

    def examples(
        self, model: str, check: DriftCheck, detector: str | None = None, limit: int = 5
    ) -> DriftExamples | None:
        """Texts of ``check``'s window that show what ``detector`` saw (default:
        ``drift.examples.example_detector``); None for a check without a measured effect.
        Reads the window's answers again: answers erased since are not shown."""
        shown = (
            example_detector(check.results)
            if detector is None
            else next((r for r in check.results if r["detector"] == detector), None)
        )
        if shown is None or check.window_start is None or check.window_end is None:
            return None
        with self.db.read() as conn:
            served = prediction_repo.served_between(
                conn, model, check.version, check.window_start, check.window_end, check.n
            )
        return drifted_examples(shown, [p.text for p in served], [p.answer for p in served], limit)

    def latest(self, model: str) -> DriftCheck | None:
        with self.db.read() as conn:
            model_repo.get_model(conn, model)
            return drift_repo.latest_drift_check(conn, model)

    # -- parts ------------------------------------------------------------------------------------

    def _reference(self, version: ModelVersion) -> DriftReference | None:
        uri = version.metrics.get(METRICS_KEY)
        if not uri:
            why = version.metrics.get(METRICS_ERROR_KEY, "trained before drift monitoring")
            log.info("model %s version %d has no drift reference: %s", version.model, version.version, why)
            return None
        cached = self._references.get(version.model)
        if cached is not None and cached[0] == uri:
            return cached[1]
        try:
            reference = DriftReference.from_bytes(self.store.get_bytes(uri), uri)
        except LearnloopError as exc:
            log.warning("model %s version %d: %s", version.model, version.version, exc.message)
            return None
        self._references[version.model] = (uri, reference)
        return reference

    def _features(self, model: Model, version: ModelVersion) -> FeatureMap | None:
        try:
            loaded = self.cache.load(model, version)
        except LearnloopError as exc:  # the text detectors still run; multivariate says "hashed"
            log.warning("model %s version %d: no feature map: %s", version.model, version.version, exc.message)
            return None
        return feature_map_of(loaded.predictor)

    def _results(
        self, model: Model, version: ModelVersion, reference: DriftReference, served: list[Prediction]
    ) -> list[dict[str, Any]]:
        """Every detector on the window the model's task makes of the served answers."""
        window = get_task(model.task).drift_window(reference.labels, served)
        results = check_all(reference.summaries, window, features=self._features(model, version))
        return [r.to_dict() for r in results]

    def _export(self, check: DriftCheck) -> None:
        m = self.metrics
        m.drift_checks.labels(check.model, check.status).inc()
        for r in check.results:
            if r.get("effect_size") is not None:
                m.drift_effect.labels(check.model, r["detector"]).set(r["effect_size"])
            m.drift_alarm.labels(check.model, r["detector"]).set(int(bool(r["drifted"])))


def transition(previous: DriftCheck | None, current: DriftCheck) -> str | None:
    """The event a check writes: ``drift_detected`` when the version drifts and its previous
    check did not, ``drift_resolved`` when it drifted and no longer does, else None."""
    was_drifting = previous is not None and previous.version == current.version and previous.drifted
    if current.drifted and not was_drifting:
        return "drift_detected"
    if was_drifting and current.status == "ok":
        return "drift_resolved"
    return None


def _reason(check: DriftCheck) -> str:
    alarms = [r["message"] for r in check.results if r["drifted"]]
    return check.message + (": " + "; ".join(alarms) if alarms else "")


def event_data(check: DriftCheck) -> dict[str, Any]:
    """What an event says: the check, and per detector that alarmed its effect and p-value."""
    keys = ("detector", "test", "statistic", "p_value", "effect", "effect_size", "effect_threshold", "alpha")
    return {
        "check_id": check.id,
        "n": check.n,
        "window_start": check.window_start.isoformat() if check.window_start else None,
        "window_end": check.window_end.isoformat() if check.window_end else None,
        "alarms": [{k: r.get(k) for k in keys} for r in check.results if r["drifted"]],
    }
