"""Rollouts: challengers on live traffic.
Takes and returns domain records; table rows never leave ``store``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.engine import RowMapping

from learnloop.domain import Rollout, RolloutStatus, Strategy
from learnloop.errors import NotFoundError
from learnloop.policy import Policy
from learnloop.store import tables as t

_ACTIVE = [RolloutStatus.RUNNING.value, RolloutStatus.PAUSED.value]


def _rollout(row: RowMapping) -> Rollout:
    return Rollout(
        id=row["id"],
        model=row["model"],
        version=row["version"],
        baseline_version=row["baseline_version"],
        strategy=Strategy(row["strategy"]),
        status=RolloutStatus(row["status"]),
        share=row["share"],
        steps=tuple(row["steps"]),
        step=row["step"],
        settings=Policy.from_dict(dict(row["settings"])),
        stats=dict(row["stats"]),
        actor=row["actor"],
        reason=row["reason"],
        started_at=row["started_at"],
        step_started_at=row["step_started_at"],
        updated_at=row["updated_at"],
        ended_at=row["ended_at"],
    )


def insert_rollout(
    conn: Connection,
    *,
    model: str,
    version: int,
    baseline_version: int,
    strategy: Strategy,
    share: float,
    steps: Sequence[float],
    settings: Policy,
    actor: str,
    reason: str | None,
    at: datetime,
) -> int:
    result = conn.execute(
        insert(t.rollouts)
        .values(
            model=model,
            version=version,
            baseline_version=baseline_version,
            strategy=strategy.value,
            status=RolloutStatus.RUNNING.value,
            share=share,
            steps=list(steps),
            step=0,
            settings=settings.to_sections(),
            stats={},
            actor=actor,
            reason=reason,
            started_at=at,
            step_started_at=at,
            updated_at=at,
        )
        .returning(t.rollouts.c.id)
    )
    return int(result.scalar_one())


def get_rollout(conn: Connection, model: str, rollout_id: int, *, for_update: bool = False) -> Rollout:
    q = select(t.rollouts).where(t.rollouts.c.id == rollout_id, t.rollouts.c.model == model)
    if for_update:
        q = q.with_for_update()
    row = conn.execute(q).mappings().first()
    if row is None:
        raise NotFoundError(f"rollout {rollout_id} of model {model!r} not found", field="rollout_id")
    return _rollout(row)


def active_rollout(conn: Connection, model: str, *, for_update: bool = False) -> Rollout | None:
    q = select(t.rollouts).where(t.rollouts.c.model == model, t.rollouts.c.status.in_(_ACTIVE))
    if for_update:
        q = q.with_for_update()
    row = conn.execute(q.order_by(t.rollouts.c.id.desc())).mappings().first()
    return _rollout(row) if row is not None else None


def active_rollouts(conn: Connection) -> list[Rollout]:
    q = select(t.rollouts).where(t.rollouts.c.status.in_(_ACTIVE)).order_by(t.rollouts.c.id)
    return [_rollout(r) for r in conn.execute(q).mappings()]


def list_rollouts(conn: Connection, model: str, limit: int = 20) -> list[Rollout]:
    q = select(t.rollouts).where(t.rollouts.c.model == model).order_by(t.rollouts.c.id.desc()).limit(limit)
    return [_rollout(r) for r in conn.execute(q).mappings()]


def update_rollout(conn: Connection, rollout_id: int, **values: Any) -> None:
    if isinstance(values.get("status"), RolloutStatus):
        values["status"] = values["status"].value
    if "steps" in values:
        values["steps"] = list(values["steps"])
    conn.execute(update(t.rollouts).where(t.rollouts.c.id == rollout_id).values(**values))


def delete_for_model(conn: Connection, model: str) -> int:
    return conn.execute(delete(t.rollouts).where(t.rollouts.c.model == model)).rowcount
