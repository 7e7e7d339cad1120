"""The rollout controller: looks at each running rollout's live evidence and acts on it.

``look`` gathers the evidence from the database (feedback on each arm's answers, what each
arm served and how fast), runs the always-valid sequential test and the guardrails, asks
``decide`` what to do, and does it: stores the look's statistics on the rollout, moves a
canary to its next traffic step, promotes, rolls back or concludes. Every action is an event
carrying the statistics. The worker looks every few seconds; any number of workers may, since
every action re-checks the rollout under a row lock (``RegistryService``) before it writes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from learnloop.clock import Clock
from learnloop.domain import AnswerSample, Model, Rollout, RolloutStatus, Strategy
from learnloop.errors import ConflictError, ValidationError
from learnloop.evaluation.sequential import paired, two_sample
from learnloop.policy import Policy
from learnloop.registry.service import RegistryService
from learnloop.rollout import guardrails
from learnloop.rollout.arms import paired_outcomes, two_arm_outcomes
from learnloop.rollout.decide import Decision, Evidence, decide
from learnloop.store.db import Database
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import models as model_repo
from learnloop.store.repositories import predictions as prediction_repo
from learnloop.store.repositories import rollouts as rollout_repo
from learnloop.tasks import Task, get_task
from learnloop.telemetry import Metrics

log = logging.getLogger(__name__)
GUARDRAIL_WINDOW = 5_000  # newest answers per arm the latency, answer- and length-shift guardrails read


class RolloutService:
    def __init__(self, db: Database, registry: RegistryService, clock: Clock, metrics: Metrics) -> None:
        self.db = db
        self.registry = registry
        self.clock = clock
        self.metrics = metrics

    # -- what users do ----------------------------------------------------------------------
    def start(
        self,
        model: str,
        version: int,
        strategy: Strategy | str,
        *,
        actor: str,
        reason: str | None = None,
        changes: dict[str, Any] | None = None,
        share: float | None = None,
        baseline: int | None = None,
        force: bool = False,
    ) -> Rollout:
        """Start a rollout; ``changes`` override the model's policy for this rollout only; a
        version the gate rejected needs ``force``."""
        try:
            strategy = Strategy(strategy)
        except ValueError:
            raise ValidationError(
                f"strategy must be one of {', '.join(s.value for s in Strategy)}; got {strategy!r}", field="strategy"
            ) from None
        settings = self.registry.get_model(model).policy.updated(changes or {})
        return self.registry.start_rollout(
            model,
            version,
            strategy,
            actor=actor,
            reason=reason,
            settings=settings,
            share=share,
            baseline=baseline,
            force=force,
        )

    def get(self, model: str, rollout_id: int) -> Rollout:
        with self.db.read() as conn:
            return rollout_repo.get_rollout(conn, model, rollout_id)

    def active(self, model: str) -> Rollout | None:
        with self.db.read() as conn:
            model_repo.get_model(conn, model)
            return rollout_repo.active_rollout(conn, model)

    def list(self, model: str, limit: int = 20) -> list[Rollout]:
        with self.db.read() as conn:
            model_repo.get_model(conn, model)
            return rollout_repo.list_rollouts(conn, model, limit)

    def pause(self, model: str, rollout_id: int, *, actor: str, reason: str | None = None) -> Rollout:
        return self.registry.set_rollout_paused(model, rollout_id, True, actor=actor, reason=reason)

    def resume(self, model: str, rollout_id: int, *, actor: str, reason: str | None = None) -> Rollout:
        return self.registry.set_rollout_paused(model, rollout_id, False, actor=actor, reason=reason)

    def stop(self, model: str, rollout_id: int, *, actor: str, reason: str | None = None) -> Rollout:
        return self.registry.end_rollout(model, rollout_id, RolloutStatus.STOPPED, actor=actor, reason=reason)

    def rollback(self, model: str, rollout_id: int, *, actor: str, reason: str | None = None) -> Rollout:
        return self.registry.end_rollout(model, rollout_id, RolloutStatus.ROLLED_BACK, actor=actor, reason=reason)

    def promote(self, model: str, rollout_id: int, *, actor: str, reason: str | None = None) -> Rollout:
        rollout = self.get(model, rollout_id)
        if not rollout.status.active:
            raise ConflictError(f"rollout {rollout_id} of {model!r} has ended ({rollout.status.value})")
        self.registry.promote(model, rollout.version, actor=actor, reason=reason, rollout_id=rollout_id)
        return self.get(model, rollout_id)

    # -- the controller ---------------------------------------------------------------------
    def evidence(self, rollout: Rollout) -> Evidence:
        s = rollout.settings
        previous_p = float(rollout.stats.get("test", {}).get("p_value", 1.0))
        with self.db.read() as conn:
            spec = model_repo.get_model(conn, rollout.model)
            task = get_task(spec.task)
            rule = task.outcomes(spec)
            if rollout.strategy == Strategy.SHADOW:
                pairs = paired_outcomes(feedback_repo.shadow_feedback(conn, rollout.model, rollout.id), rule)
                test = paired(
                    pairs.both, pairs.a_only, pairs.b_only, pairs.neither, alpha=s.gate.alpha, previous_p=previous_p
                )
                served = prediction_repo.arm_answers(
                    conn, rollout.model, rollout.started_at, rollout.baseline_version, ["champion"], GUARDRAIL_WINDOW
                )
                shadow = prediction_repo.shadow_answers(conn, rollout.id, GUARDRAIL_WINDOW)
                checks = [_answer_shift(spec, task, served, shadow, s), *_length_shift(task, served, shadow, s)]
                return Evidence(test, checks, pairs.unknown)
            events = feedback_repo.arm_feedback(
                conn, rollout.model, rollout.started_at, [rollout.baseline_version, rollout.version]
            )
            arms = two_arm_outcomes(events, rule, a_version=rollout.baseline_version, b_version=rollout.version)
            test = two_sample(arms.a, arms.b, alpha=s.gate.alpha, previous_p=previous_p)
            routes = prediction_repo.count_routes(conn, rollout.model, rollout.started_at, ["canary", "fallback"])
            on_step = None
            if rollout.strategy == Strategy.CANARY:
                on_step = prediction_repo.count_routes(conn, rollout.model, rollout.step_started_at, ["canary"])

            base = prediction_repo.arm_answers(
                conn,
                rollout.model,
                rollout.started_at,
                rollout.baseline_version,
                ["champion", "baseline"],
                GUARDRAIL_WINDOW,
            )
            chal = prediction_repo.arm_answers(
                conn, rollout.model, rollout.started_at, rollout.version, ["canary"], GUARDRAIL_WINDOW
            )
        fallbacks = routes.get("fallback", 0)
        checks = [
            guardrails.error_rate(fallbacks, routes.get("canary", 0) + fallbacks, s),
            guardrails.latency([a.latency_ms for a in base], [a.latency_ms for a in chal], s),
            _answer_shift(spec, task, base, chal, s),
            *_length_shift(task, base, chal, s),
        ]
        served_on_step = None if on_step is None else on_step.get("canary", 0)
        return Evidence(test, checks, arms.unknown, served_on_step)

    def look(self, model: str) -> Decision | None:
        """One look at the model's running rollout, acted on; None when there is none."""
        with self.db.read() as conn:
            rollout = rollout_repo.active_rollout(conn, model)
        if rollout is None:
            return None
        evidence = self.evidence(rollout)
        now = self.clock.now()
        decision = decide(rollout, evidence, now)
        stats = {
            "test": evidence.test.to_dict(),
            "guardrails": [g.to_dict() for g in evidence.guardrails],
            "unknown_feedback": evidence.unknown,
            "decision": decision.action,
            "reason": decision.reason,
            "looked_at": now.isoformat(),
        }
        try:
            self._act(rollout, decision, stats)
        except ConflictError as exc:  # someone (a user, another worker) acted first
            log.info("model %s: rollout %s: %s", model, rollout.id, exc)
        return decision

    def look_all(self) -> dict[str, Decision]:
        with self.db.read() as conn:
            models = sorted({r.model for r in rollout_repo.active_rollouts(conn)})
        out = {}
        for model in models:
            try:
                decision = self.look(model)
            except Exception:
                log.exception("model %s: looking at the rollout failed", model)
                continue
            if decision is not None:
                out[model] = decision
        return out

    def _act(self, rollout: Rollout, decision: Decision, stats: dict[str, Any]) -> None:
        actor = f"rollout:{rollout.id}"
        if decision.action == "promote":
            self.registry.promote(
                rollout.model,
                rollout.version,
                actor=actor,
                reason=decision.reason,
                rollout_stats=stats,
                rollout_id=rollout.id,
            )
        elif decision.action in ("rollback", "conclude"):
            status = RolloutStatus.ROLLED_BACK if decision.action == "rollback" else RolloutStatus.CONCLUDED
            self.registry.end_rollout(
                rollout.model, rollout.id, status, actor=actor, reason=decision.reason, stats=stats
            )
        else:
            self._record(rollout, decision, stats)
            return
        self.metrics.rollout_share.labels(rollout.model, rollout.strategy.value).set(0)

    def _record(self, rollout: Rollout, decision: Decision, stats: dict[str, Any]) -> None:
        """Store a look (hold) or take the next canary step, if the rollout is as we saw it."""
        step_to = decision.share if decision.action == "step" else None
        share = self.registry.record_rollout_look(rollout, step_to=step_to, reason=decision.reason, stats=stats)
        self.metrics.rollout_share.labels(rollout.model, rollout.strategy.value).set(share)


def _answer_shift(
    model: Model, task: Task, baseline: Sequence[AnswerSample], challenger: Sequence[AnswerSample], settings: Policy
) -> guardrails.GuardrailCheck:
    """The guardrail on the mix of answer categories (classification: the labels) between two arms."""
    a = [task.answer_category(sample.answer) for sample in baseline]
    b = [task.answer_category(sample.answer) for sample in challenger]
    return guardrails.label_shift(a, b, list(model.labels) or sorted(set(a) | set(b)), settings)


def _length_shift(
    task: Task, baseline: Sequence[AnswerSample], challenger: Sequence[AnswerSample], settings: Policy
) -> list[guardrails.GuardrailCheck]:
    """The guardrail on the size of the answers (generation: the response's length) between two
    arms; none for a task whose answers have no size (classification)."""
    a = [size for sample in baseline if (size := task.answer_size(sample.answer)) is not None]
    b = [size for sample in challenger if (size := task.answer_size(sample.answer)) is not None]
    if not a and not b:
        return []
    return [guardrails.length_shift(a, b, settings)]
