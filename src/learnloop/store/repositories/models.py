"""Models, their versions, who serves (deployments) and their bootstrap examples.
Takes and returns domain records; table rows never leave ``store``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.engine import RowMapping

from learnloop.domain import (
    Deployment,
    Model,
    ModelVersion,
    TrainingCost,
    VersionStatus,
)
from learnloop.errors import ConflictError, NotFoundError
from learnloop.policy import Policy
from learnloop.store import tables as t


def _model(row: RowMapping) -> Model:
    return Model(
        name=row["name"],
        task=row["task"],
        labels=tuple(row["labels"]),
        family=row["family"],
        params=dict(row["params"]),
        policy=Policy.from_dict(row["policy"]),
        created_at=row["created_at"],
        retrain_watermark=row["retrain_watermark"],
        last_retrain_at=row["last_retrain_at"],
    )


def insert_model(conn: Connection, model: Model) -> None:
    if conn.execute(select(t.models.c.name).where(t.models.c.name == model.name)).first():
        raise ConflictError(f"model {model.name!r} already exists", field="model")
    conn.execute(
        insert(t.models).values(
            name=model.name,
            task=model.task,
            labels=list(model.labels),
            family=model.family,
            params=model.params,
            policy=model.policy.to_sections(),
            created_at=model.created_at,
        )
    )
    conn.execute(insert(t.deployments).values(model=model.name, revision=0, updated_at=model.created_at))


def get_model(conn: Connection, name: str) -> Model:
    row = conn.execute(select(t.models).where(t.models.c.name == name)).mappings().first()
    if row is None:
        raise NotFoundError(f"model {name!r} not found", field="model")
    return _model(row)


def list_models(conn: Connection) -> list[Model]:
    return [_model(r) for r in conn.execute(select(t.models).order_by(t.models.c.name)).mappings()]


def update_model(conn: Connection, name: str, **values: Any) -> None:
    if "policy" in values and isinstance(values["policy"], Policy):
        values["policy"] = values["policy"].to_sections()
    conn.execute(update(t.models).where(t.models.c.name == name).values(**values))


def _version(row: RowMapping) -> ModelVersion:
    return ModelVersion(
        model=row["model"],
        version=row["version"],
        status=VersionStatus(row["status"]),
        family=row["family"],
        params=dict(row["params"]),
        snapshot_hash=row["snapshot_hash"],
        parent_version=row["parent_version"],
        code_version=row["code_version"],
        metrics=dict(row["metrics"]),
        verdict=row["verdict"],
        artifact_uri=row["artifact_uri"],
        created_at=row["created_at"],
        status_reason=row["status_reason"],
        train_seconds=row["train_seconds"],
        erasures=tuple(row["erasures"] or ()),
        cost=TrainingCost.from_dict(row["cost"]) if row["cost"] else None,
        artifacts_pruned_at=row["artifacts_pruned_at"],
        caches_dropped_at=row["caches_dropped_at"],
        status_changed_at=row["status_changed_at"],
    )


def next_version_number(conn: Connection, model: str) -> int:
    current = conn.execute(
        select(func.max(t.model_versions.c.version)).where(t.model_versions.c.model == model)
    ).scalar()
    return int(current or 0) + 1


def insert_version(conn: Connection, v: ModelVersion) -> None:
    conn.execute(
        insert(t.model_versions).values(
            model=v.model,
            version=v.version,
            status=v.status.value,
            status_reason=v.status_reason,
            family=v.family,
            params=v.params,
            snapshot_hash=v.snapshot_hash,
            parent_version=v.parent_version,
            code_version=v.code_version,
            metrics=v.metrics,
            verdict=v.verdict,
            artifact_uri=v.artifact_uri,
            train_seconds=v.train_seconds,
            cost=v.cost.to_dict() if v.cost is not None else None,
            created_at=v.created_at,
        )
    )


def get_version(conn: Connection, model: str, version: int) -> ModelVersion:
    row = (
        conn.execute(
            select(t.model_versions).where(t.model_versions.c.model == model, t.model_versions.c.version == version)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(f"version {version} of model {model!r} not found", field="version")
    return _version(row)


def list_versions(conn: Connection, model: str) -> list[ModelVersion]:
    q = select(t.model_versions).where(t.model_versions.c.model == model).order_by(t.model_versions.c.version)
    return [_version(r) for r in conn.execute(q).mappings()]


def set_version_status(
    conn: Connection, model: str, version: int, status: VersionStatus, reason: str | None, at: datetime
) -> None:
    """The version's new status, why, and when (retention counts a retired version's age from it)."""
    conn.execute(
        update(t.model_versions)
        .where(t.model_versions.c.model == model, t.model_versions.c.version == version)
        .values(status=status.value, status_reason=reason, status_changed_at=at)
    )


def _deployment(row: RowMapping) -> Deployment:
    return Deployment(
        model=row["model"],
        champion_version=row["champion_version"],
        previous_version=row["previous_version"],
        revision=row["revision"],
        updated_at=row["updated_at"],
    )


def get_deployment(conn: Connection, model: str, *, for_update: bool = False) -> Deployment:
    q = select(t.deployments).where(t.deployments.c.model == model)
    if for_update:
        q = q.with_for_update()
    row = conn.execute(q).mappings().first()
    if row is None:
        raise NotFoundError(f"model {model!r} not found", field="model")
    return _deployment(row)


def list_deployments(conn: Connection) -> list[Deployment]:
    return [_deployment(r) for r in conn.execute(select(t.deployments)).mappings()]


def set_deployment(conn: Connection, model: str, champion: int | None, previous: int | None, at: datetime) -> int:
    conn.execute(
        update(t.deployments)
        .where(t.deployments.c.model == model)
        .values(
            champion_version=champion,
            previous_version=previous,
            revision=t.deployments.c.revision + 1,
            updated_at=at,
        )
    )
    return get_deployment(conn, model).revision


def bump_revision(conn: Connection, model: str, at: datetime) -> None:
    """Routing changed without a new champion (a rollout started, stepped or ended): every
    server process reloads the model's route."""
    conn.execute(
        update(t.deployments)
        .where(t.deployments.c.model == model)
        .values(revision=t.deployments.c.revision + 1, updated_at=at)
    )


def routing_revisions(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(t.deployments.c.model, t.deployments.c.revision))
    return {model: revision for model, revision in rows}


def insert_examples(
    conn: Connection,
    model: str,
    split: str,
    rows: Iterable[tuple[str, str]],
    source: str,
    metadata: Sequence[Mapping[str, Any] | None] = (),
) -> None:
    """A model's own rows; ``metadata``, if given, aligned with ``rows``."""
    values: list[dict[str, Any]] = [
        {"model": model, "split": split, "text": text, "label": label, "source": source} for text, label in rows
    ]
    if metadata:
        for value, meta in zip(values, metadata, strict=True):
            value["metadata"] = meta or None
    if values:
        conn.execute(insert(t.examples), values)


def load_examples(conn: Connection, model: str, split: str) -> list[tuple[str, str]]:
    q = (
        select(t.examples.c.text, t.examples.c.label)
        .where(t.examples.c.model == model, t.examples.c.split == split)
        .order_by(t.examples.c.id)
    )
    return [(text, label) for text, label in conn.execute(q)]


def load_example_metadata(conn: Connection, model: str, split: str) -> list[dict[str, Any] | None]:
    """Each row's metadata, aligned with ``load_examples``; empty when no row has any."""
    q = (
        select(t.examples.c.metadata)
        .where(t.examples.c.model == model, t.examples.c.split == split)
        .order_by(t.examples.c.id)
    )
    found = [meta or None for meta in conn.execute(q).scalars()]
    return found if any(found) else []


def mark_version_retention(
    conn: Connection, model: str, version: int, *, pruned_at: datetime | None = None, dropped_at: datetime | None = None
) -> None:
    """Record that a version's artifact was removed (``pruned_at``) or its caches dropped."""
    values: dict[str, Any] = {}
    if pruned_at is not None:
        values["artifacts_pruned_at"] = pruned_at
    if dropped_at is not None:
        values["caches_dropped_at"] = dropped_at
    if values:
        v = t.model_versions
        conn.execute(update(v).where(v.c.model == model, v.c.version == version).values(**values))


def mark_version_erasure(conn: Connection, model: str, version: int, at: datetime) -> None:
    v = t.model_versions
    where = and_(v.c.model == model, v.c.version == version)
    marks = list(conn.execute(select(v.c.erasures).where(where)).scalar_one() or [])
    conn.execute(update(v).where(where).values(erasures=[*marks, {"at": at.isoformat()}]))


def snapshot_users(conn: Connection, hashes: Iterable[str], *, besides: str) -> dict[str, str]:
    """For each snapshot hash, a model other than ``besides`` with a version trained on it
    (snapshots are content-addressed: two models may share one)."""
    wanted = sorted(set(hashes))
    if not wanted:
        return {}
    v = t.model_versions
    q = (
        select(v.c.snapshot_hash, func.min(v.c.model))
        .where(v.c.snapshot_hash.in_(wanted), v.c.model != besides)
        .group_by(v.c.snapshot_hash)
    )
    return {snapshot_hash: model for snapshot_hash, model in conn.execute(q)}


def delete_model(conn: Connection, name: str) -> dict[str, int]:
    """A model and what belongs to it alone: versions, deployment, bootstrap examples. Rows per table."""
    counts = {}
    for table in (t.examples, t.model_versions, t.deployments):
        counts[table.name] = conn.execute(delete(table).where(table.c.model == name)).rowcount
    counts["models"] = conn.execute(delete(t.models).where(t.models.c.name == name)).rowcount
    return counts
