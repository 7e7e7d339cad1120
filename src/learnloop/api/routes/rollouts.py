"""Rollouts (canary, shadow, A/B): start, inspect, pause, resume, promote, roll back, stop;
and the sample-size helper."""

from __future__ import annotations

from fastapi import APIRouter, Query

from learnloop.api.deps import AdminDep, PageLimit, PathInt, ReadDep, ServicesDep
from learnloop.api.openapi import problems
from learnloop.api.schemas import ActionRequest, RolloutCreate, RolloutPublic, SampleSizePublic
from learnloop.errors import ValidationError
from learnloop.evaluation.power import plan_sample_size

router = APIRouter(tags=["rollouts"])
PREFIX = "/v1/models/{model}/rollouts"


@router.post(
    PREFIX, response_model=RolloutPublic, status_code=201, operation_id="start_rollout", responses=problems(404, 409)
)
async def start(model: str, body: RolloutCreate, actor: AdminDep, services: ServicesDep) -> RolloutPublic:
    """Put a version on live traffic beside the champion; a running rollout is superseded."""
    return RolloutPublic.of(
        services.rollouts.start(
            model,
            body.version,
            body.strategy,
            actor=actor.name,
            reason=body.reason or "started through the API",
            changes=body.settings,
            share=body.share,
            baseline=body.baseline,
            force=body.force,
        )
    )


@router.get(PREFIX, response_model=list[RolloutPublic], responses=problems(404))
async def list_rollouts(model: str, _: ReadDep, services: ServicesDep, limit: PageLimit = 20) -> list[RolloutPublic]:
    """The model's rollouts, newest first, with their traffic split, statistics and decision."""
    return [RolloutPublic.of(r) for r in services.rollouts.list(model, limit)]


@router.get(PREFIX + "/{rollout_id}", response_model=RolloutPublic, responses=problems(404))
async def get_rollout(model: str, rollout_id: PathInt, _: ReadDep, services: ServicesDep) -> RolloutPublic:
    """A rollout: its arms, traffic share, steps, live statistics and decision."""
    return RolloutPublic.of(services.rollouts.get(model, rollout_id))


def _action(name: str, summary: str) -> None:
    async def act(
        model: str, rollout_id: PathInt, actor: AdminDep, services: ServicesDep, body: ActionRequest | None = None
    ) -> RolloutPublic:
        method = getattr(services.rollouts, name)
        reason = (body.reason if body else None) or f"{name} through the API"
        return RolloutPublic.of(method(model, rollout_id, actor=actor.name, reason=reason))

    act.__name__ = name
    act.__doc__ = summary
    router.add_api_route(
        PREFIX + f"/{{rollout_id}}/{name}",
        act,
        methods=["POST"],
        response_model=RolloutPublic,
        operation_id=f"{name}_rollout",
        responses=problems(404, 409),
    )


_action("pause", "Hold the traffic split where it is; no automatic step or promotion (guardrails still act).")
_action("resume", "Let the rollout step and decide again.")
_action("promote", "Make the challenger champion now.")
_action("rollback", "Take the challenger off traffic now and mark it rejected.")
_action("stop", "End the rollout without a decision; the challenger goes back to being a candidate.")


@router.get("/v1/stats/sample-size", response_model=SampleSizePublic)
async def sample_size(
    _: ReadDep,
    baseline: float = Query(gt=0, lt=1, description="Current accuracy, e.g. 0.85"),
    delta: float = Query(
        gt=-1, lt=1, description="Change to detect, e.g. 0.02 for +2 points", json_schema_extra={"not": {"const": 0}}
    ),
    power: float = Query(default=0.8, gt=0, lt=1),
    alpha: float = Query(default=0.05, gt=0, lt=1),
) -> SampleSizePublic:
    """How much labelled feedback per arm a test needs to detect ``delta`` at ``power``."""
    try:
        plan = plan_sample_size(baseline, delta, alpha=alpha, power=power)
    except ValueError as exc:
        raise ValidationError(str(exc), field="query") from None
    return SampleSizePublic(
        baseline=plan.baseline,
        delta=plan.delta,
        alpha=plan.alpha,
        power=plan.power,
        fixed_per_arm=plan.fixed_per_arm,
        sequential_per_arm=plan.sequential_per_arm,
        summary=plan.summary(),
    )
