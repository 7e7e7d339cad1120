"""Repositories: every SQL statement learnloop runs lives here. They take and return
domain objects (``learnloop.domain``); table rows never leave this package."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from itertools import chain
from typing import Any

import orjson
from sqlalchemy import Connection, Select, and_, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect, RowMapping

from learnloop.domain import (
    Deployment,
    DriftCheck,
    Event,
    Feedback,
    FeedbackKind,
    Job,
    JobStatus,
    Model,
    ModelVersion,
    Policy,
    Rollout,
    RolloutStatus,
    Strategy,
    Task,
    VersionStatus,
)
from learnloop.errors import ConflictError, NotFoundError
from learnloop.notify.base import Delivery, DeliveryStatus, Webhook
from learnloop.store import tables as t

LABELLED_KINDS = (
    FeedbackKind.LABEL,
    FeedbackKind.EXAMPLE,
    FeedbackKind.THUMBS,
    FeedbackKind.RATING,
)


# -- models ---------------------------------------------------------------------------------


def _model(row: RowMapping) -> Model:
    return Model(
        name=row["name"],
        task=Task(row["task"]),
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
            task=model.task.value,
            labels=list(model.labels),
            family=model.family,
            params=model.params,
            policy=model.policy.to_dict(),
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
        values["policy"] = values["policy"].to_dict()
    conn.execute(update(t.models).where(t.models.c.name == name).values(**values))


# -- versions -------------------------------------------------------------------------------


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


def set_version_status(conn: Connection, model: str, version: int, status: VersionStatus, reason: str | None) -> None:
    conn.execute(
        update(t.model_versions)
        .where(t.model_versions.c.model == model, t.model_versions.c.version == version)
        .values(status=status.value, status_reason=reason)
    )


# -- deployments ----------------------------------------------------------------------------


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


# -- events ---------------------------------------------------------------------------------


def insert_event(
    conn: Connection,
    *,
    model: str,
    kind: str,
    at: datetime,
    actor: str,
    version: int | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        insert(t.events).values(
            model=model,
            kind=kind,
            version=version,
            actor=actor,
            reason=reason,
            data=data or {},
            created_at=at,
        )
    )


def _event(row: RowMapping) -> Event:
    return Event(
        id=row["id"],
        model=row["model"],
        kind=row["kind"],
        version=row["version"],
        actor=row["actor"],
        reason=row["reason"],
        data=dict(row["data"]),
        created_at=row["created_at"],
    )


def list_events(
    conn: Connection,
    model: str,
    limit: int = 50,
    after_id: int | None = None,
    kinds: Sequence[str] | None = None,
) -> list[Event]:
    """The newest ``limit`` events (of ``kinds``, if given), newest first; with ``after_id``, the
    oldest ``limit`` after it, oldest first (to follow the trail)."""
    q = select(t.events).where(t.events.c.model == model)
    if kinds:
        q = q.where(t.events.c.kind.in_(list(kinds)))
    if after_id is None:
        q = q.order_by(t.events.c.id.desc()).limit(limit)
    else:
        q = q.where(t.events.c.id > after_id).order_by(t.events.c.id).limit(limit)
    return [_event(r) for r in conn.execute(q).mappings()]


# -- online performance ---------------------------------------------------------------------


def judged_answers(conn: Connection, model: str, version: int | None, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` feedback events on answers of ``version`` (every version if None),
    newest first, with what was answered: the evidence behind online accuracy."""
    q = select(
        *_OUTCOME_COLUMNS, t.predictions.c.version, t.predictions.c.route, t.predictions.c.created_at.label("served_at")
    ).select_from(
        t.feedback.join(
            t.predictions,
            and_(t.predictions.c.id == t.feedback.c.prediction_id, t.predictions.c.model == t.feedback.c.model),
        )
    )
    q = q.where(t.feedback.c.model == model)
    if version is not None:
        q = q.where(t.predictions.c.version == version)
    q = q.order_by(t.feedback.c.created_at.desc(), t.feedback.c.id.desc()).limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def recent_probabilities(conn: Connection, model: str, version: int, limit: int) -> list[dict[str, float]]:
    """The probabilities of the newest ``limit`` answers of ``version`` (newest first)."""
    p = t.predictions
    q = (
        select(p.c.probabilities)
        .where(p.c.model == model, p.c.version == version)
        .order_by(p.c.created_at.desc())
        .limit(limit)
    )
    return [orjson.loads(raw) for raw in conn.execute(q).scalars()]


def latest_event(conn: Connection, model: str, kinds: Sequence[str]) -> Event | None:
    found = list_events(conn, model, 1, None, kinds)
    return found[0] if found else None


# -- rollouts -------------------------------------------------------------------------------

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
            settings=settings.to_dict(),
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


# A feedback event and the answer it is about: what ``rollout.outcomes`` judges.
_OUTCOME_COLUMNS = (
    t.feedback.c.id,
    t.feedback.c.kind,
    t.feedback.c.label,
    t.feedback.c.thumbs,
    t.feedback.c.rating,
    t.feedback.c.created_at,
    t.feedback.c.prediction_id,
    t.predictions.c.label.label("predicted_label"),
)


def arm_feedback(conn: Connection, model: str, since: datetime, versions: Sequence[int]) -> list[dict[str, Any]]:
    """Feedback on the predictions the given versions served since ``since``, oldest first,
    with what was predicted (the live test's evidence for canaries and A/B tests)."""
    f, p = t.feedback, t.predictions
    q = (
        select(*_OUTCOME_COLUMNS, p.c.version, p.c.route)
        .select_from(f.join(p, and_(p.c.id == f.c.prediction_id, p.c.model == f.c.model)))
        .where(f.c.model == model, p.c.created_at >= since, p.c.version.in_(list(versions)))
        .order_by(f.c.created_at, f.c.id)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def shadow_feedback(conn: Connection, model: str, rollout_id: int) -> list[dict[str, Any]]:
    """Feedback on served predictions that a shadow also answered: both answers, oldest first."""
    f, p, s = t.feedback, t.predictions, t.shadow_predictions
    q = (
        select(*_OUTCOME_COLUMNS, s.c.label.label("shadow_label"))
        .select_from(
            f.join(p, and_(p.c.id == f.c.prediction_id, p.c.model == f.c.model)).join(s, s.c.prediction_id == p.c.id)
        )
        .where(f.c.model == model, s.c.rollout_id == rollout_id)
        .order_by(f.c.created_at, f.c.id)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def arm_predictions(
    conn: Connection, model: str, since: datetime, version: int, routes: Sequence[str], limit: int
) -> list[dict[str, Any]]:
    """The newest ``limit`` predictions a version served on the given routes since ``since``
    (label, latency): what the guardrails watch."""
    p = t.predictions
    q = (
        select(p.c.label, p.c.latency_ms, p.c.route)
        .where(p.c.model == model, p.c.created_at >= since, p.c.version == version, p.c.route.in_(list(routes)))
        .order_by(p.c.created_at.desc())
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def count_routes(conn: Connection, model: str, since: datetime, routes: Sequence[str]) -> dict[str, int]:
    p = t.predictions
    q = (
        select(p.c.route, func.count())
        .where(p.c.model == model, p.c.created_at >= since, p.c.route.in_(list(routes)))
        .group_by(p.c.route)
    )
    return {route: int(n) for route, n in conn.execute(q)}


def shadow_latencies(conn: Connection, rollout_id: int, limit: int) -> list[dict[str, Any]]:
    s = t.shadow_predictions
    q = (
        select(s.c.label, s.c.latency_ms)
        .where(s.c.rollout_id == rollout_id)
        .order_by(s.c.created_at.desc())
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def insert_shadow_predictions(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(t.shadow_predictions), list(rows))


# -- bootstrap examples ---------------------------------------------------------------------


def insert_examples(conn: Connection, model: str, split: str, rows: Iterable[tuple[str, str]], source: str) -> None:
    values = [{"model": model, "split": split, "text": text, "label": label, "source": source} for text, label in rows]
    if values:
        conn.execute(insert(t.examples), values)


def load_examples(conn: Connection, model: str, split: str) -> list[tuple[str, str]]:
    q = (
        select(t.examples.c.text, t.examples.c.label)
        .where(t.examples.c.model == model, t.examples.c.split == split)
        .order_by(t.examples.c.id)
    )
    return [(text, label) for text, label in conn.execute(q)]


# -- predictions (written in batches by the prediction log) ---------------------------------


PREDICTION_COLUMNS = tuple(str(c.name) for c in t.predictions.columns)  # plain str (not quoted_name)
PredictionRow = tuple[Any, ...]  # values in PREDICTION_COLUMNS order, ready for the driver
_SQLITE_CHUNK = 2_000  # rows per multi-row INSERT (10 columns: under SQLite's 32,766 variables)


def prediction_row_encoder(dialect: Dialect) -> Callable[[Mapping[str, Any]], PredictionRow]:
    """Turn a prediction-log row into the tuple the driver takes. Run on the request path
    (microseconds), so the writer thread does no per-row Python work and barely competes
    with request handling for the GIL."""
    to_db = t.predictions.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    position = PREDICTION_COLUMNS.index("created_at")

    def encode(row: Mapping[str, Any]) -> PredictionRow:
        values = [row[c] for c in PREDICTION_COLUMNS]
        if to_db is not None:
            values[position] = to_db(values[position])
        return tuple(values)

    return encode


def insert_predictions(conn: Connection, rows: Sequence[PredictionRow]) -> None:
    """Write encoded prediction-log rows in as few statements as the backend allows:
    ``COPY`` on PostgreSQL, multi-row ``INSERT`` on SQLite (an ``executemany`` goes row by
    row, handing the GIL back and forth on every row)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        dbapi: Any = conn.connection.dbapi_connection  # a psycopg connection
        with dbapi.cursor() as cur, cur.copy(f"COPY predictions ({', '.join(PREDICTION_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    elif conn.dialect.name == "sqlite":
        placeholder = "(" + ", ".join("?" * len(PREDICTION_COLUMNS)) + ")"
        head = f"INSERT INTO predictions ({', '.join(PREDICTION_COLUMNS)}) VALUES "
        for start in range(0, len(rows), _SQLITE_CHUNK):
            chunk = rows[start : start + _SQLITE_CHUNK]
            conn.exec_driver_sql(head + ", ".join([placeholder] * len(chunk)), tuple(chain.from_iterable(chunk)))
    else:
        conn.execute(insert(t.predictions), [dict(zip(PREDICTION_COLUMNS, row, strict=True)) for row in rows])


def count_predictions(conn: Connection, model: str | None = None) -> int:
    q = select(func.count()).select_from(t.predictions)
    if model is not None:
        q = q.where(t.predictions.c.model == model)
    return int(conn.execute(q).scalar_one())


def get_prediction(conn: Connection, prediction_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(t.predictions).where(t.predictions.c.id == prediction_id)).mappings().first()
    if row is None:
        return None
    data = dict(row)
    data["probabilities"] = orjson.loads(data["probabilities"])
    return data


# -- feedback -------------------------------------------------------------------------------


def _feedback(row: Mapping[str, Any] | RowMapping) -> Feedback:
    return Feedback(
        id=row["id"],
        model=row["model"],
        kind=FeedbackKind(row["kind"]),
        prediction_id=row["prediction_id"],
        client_id=row["client_id"],
        label=row["label"],
        thumbs=row["thumbs"],
        rating=row["rating"],
        text=row["text"],
        subject=row["subject"],
        metadata=row["metadata"],
        created_at=row["created_at"],
    )


def insert_feedback_many(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[Feedback]:
    """Insert feedback rows; a row whose (model, client_id) exists already is not inserted
    again. Returns, for each input row in order, the stored event (the first one on a retry).
    Only retries are read back: ``RETURNING`` says which rows went in."""
    if not rows:
        return []
    stmt_factory = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = stmt_factory(t.feedback).on_conflict_do_nothing().returning(t.feedback.c.id)
    inserted = set(conn.execute(stmt, list(rows)).scalars())
    retried: dict[str, set[str]] = {}
    for r in rows:
        if r["id"] not in inserted:
            retried.setdefault(r["model"], set()).add(r["client_id"])
    earlier: dict[tuple[str, str], Feedback] = {}
    if retried:
        clauses = [and_(t.feedback.c.model == m, t.feedback.c.client_id.in_(c)) for m, c in retried.items()]
        for row in conn.execute(select(t.feedback).where(or_(*clauses))).mappings():
            earlier[(row["model"], row["client_id"])] = _feedback(row)
    out = []
    for r in rows:
        if r["id"] in inserted:
            out.append(_feedback(r))
        else:
            found = earlier.get((r["model"], r["client_id"]))
            if found is None:  # pragma: no cover - would mean the insert silently failed
                raise ConflictError(f"feedback {r['id']} was not stored")
            out.append(found)
    return out


def get_feedback(conn: Connection, model: str, feedback_id: str) -> Feedback:
    q = select(t.feedback).where(
        t.feedback.c.model == model,
        or_(t.feedback.c.id == feedback_id, t.feedback.c.client_id == feedback_id),
    )
    row = conn.execute(q).mappings().first()
    if row is None:
        raise NotFoundError(f"feedback {feedback_id!r} not found for model {model!r}", field="feedback_id")
    return _feedback(row)


def feedback_counts(conn: Connection, model: str, since: datetime | None = None) -> dict[str, int]:
    q = select(t.feedback.c.kind, func.count()).where(t.feedback.c.model == model)
    if since is not None:
        q = q.where(t.feedback.c.created_at > since)
    return {kind: int(n) for kind, n in conn.execute(q.group_by(t.feedback.c.kind))}


def count_labelled_feedback_since(conn: Connection, model: str, since: datetime | None, limit: int) -> int:
    """Labelled feedback events after ``since``, counted up to ``limit`` (the trigger only
    needs to know whether the threshold is reached, not how far past it)."""
    q = select(t.feedback.c.id).where(
        t.feedback.c.model == model, t.feedback.c.kind.in_([k.value for k in LABELLED_KINDS])
    )
    if since is not None:
        q = q.where(t.feedback.c.created_at > since)
    bounded = q.limit(limit).subquery()
    return int(conn.execute(select(func.count()).select_from(bounded)).scalar_one())


def _feedback_and_answer() -> Select[Any]:
    """Feedback events, each with the answer it is about when that prediction is logged
    (``prediction_text``, ``predicted_label``, ... are None otherwise)."""
    f, p = t.feedback, t.predictions
    return select(
        f.c.id,
        f.c.kind,
        f.c.label,
        f.c.thumbs,
        f.c.rating,
        f.c.text,
        f.c.subject,
        f.c.metadata,
        f.c.created_at,
        f.c.prediction_id,
        p.c.text.label("prediction_text"),
        p.c.label.label("predicted_label"),
        p.c.version.label("prediction_version"),
        p.c.route.label("prediction_route"),
    ).select_from(f.outerjoin(p, and_(p.c.id == f.c.prediction_id, p.c.model == f.c.model)))


def feedback_with_predictions(conn: Connection, model: str, until: datetime) -> list[dict[str, Any]]:
    """Feedback up to ``until`` joined with its prediction when that is known, oldest first."""
    f = t.feedback
    q = _feedback_and_answer().where(f.c.model == model, f.c.created_at <= until).order_by(f.c.created_at, f.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


# -- snapshots ------------------------------------------------------------------------------


def upsert_snapshot(
    conn: Connection,
    *,
    hash: str,
    model: str,
    uri: str,
    counts: dict[str, Any],
    cutoff: datetime | None,
    at: datetime,
) -> None:
    exists = conn.execute(select(t.snapshots.c.hash).where(t.snapshots.c.hash == hash)).first()
    if not exists:
        conn.execute(
            insert(t.snapshots).values(hash=hash, model=model, uri=uri, counts=counts, cutoff=cutoff, created_at=at)
        )


def get_snapshot(conn: Connection, hash: str) -> dict[str, Any] | None:
    row = conn.execute(select(t.snapshots).where(t.snapshots.c.hash == hash)).mappings().first()
    return dict(row) if row else None


# -- jobs -----------------------------------------------------------------------------------


def _job(row: RowMapping) -> Job:
    return Job(
        id=row["id"],
        model=row["model"],
        kind=row["kind"],
        status=JobStatus(row["status"]),
        progress=row["progress"],
        message=row["message"],
        error=row["error"],
        result=row["result"],
        requested_by=row["requested_by"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        worker=row["worker"],
    )


def active_job(conn: Connection, model: str, kind: str) -> Job | None:
    row = conn.execute(select(t.jobs).where(t.jobs.c.active_key == f"{model}:{kind}")).mappings().first()
    return _job(row) if row else None


def insert_job(conn: Connection, *, id: str, model: str, kind: str, requested_by: str, at: datetime) -> None:
    conn.execute(
        insert(t.jobs).values(
            id=id,
            model=model,
            kind=kind,
            status=JobStatus.QUEUED.value,
            active_key=f"{model}:{kind}",
            progress=0.0,
            requested_by=requested_by,
            created_at=at,
        )
    )


def get_job(conn: Connection, job_id: str) -> Job:
    row = conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"job {job_id!r} not found", field="job_id")
    return _job(row)


def list_jobs(conn: Connection, model: str | None = None, limit: int = 20) -> list[Job]:
    q = select(t.jobs).order_by(t.jobs.c.created_at.desc()).limit(limit)
    if model is not None:
        q = q.where(t.jobs.c.model == model)
    return [_job(r) for r in conn.execute(q).mappings()]


# Any constant: the advisory lock that serialises job claims on PostgreSQL.
_CLAIM_LOCK = 0x6C6C_6A6F


def claim_job(conn: Connection, worker: str, at: datetime, *, max_running: int | None = None) -> Job | None:
    """Take the oldest queued job, unless ``max_running`` jobs are running already (across every
    worker). PostgreSQL: claims are serialised by a transaction-level advisory lock (so the
    running count cannot be read by two workers at once) and the row is taken ``FOR UPDATE
    SKIP LOCKED``; SQLite: the write transaction is already exclusive (``BEGIN IMMEDIATE``)."""
    if max_running is not None:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_CLAIM_LOCK})")
        running = select(func.count()).select_from(t.jobs).where(t.jobs.c.status == JobStatus.RUNNING.value)
        if int(conn.execute(running).scalar_one()) >= max_running:
            return None
    q = (
        select(t.jobs.c.id)
        .where(t.jobs.c.status == JobStatus.QUEUED.value)
        .order_by(t.jobs.c.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    job_id = conn.execute(q).scalar()
    if job_id is None:
        return None
    conn.execute(
        update(t.jobs)
        .where(t.jobs.c.id == job_id)
        .values(status=JobStatus.RUNNING.value, started_at=at, worker=worker, message="started")
    )
    return get_job(conn, job_id)


def update_job(conn: Connection, job_id: str, **values: Any) -> None:
    if "status" in values:
        status = JobStatus(values["status"])
        values["status"] = status.value
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
            values["active_key"] = None
    conn.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(**values))


def queue_depth(conn: Connection) -> int:
    q = select(func.count()).select_from(t.jobs).where(t.jobs.c.status == JobStatus.QUEUED.value)
    return int(conn.execute(q).scalar_one())


# -- dashboard queries ----------------------------------------------------------------------


def recent_feedback(conn: Connection, model: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` feedback events of ``model``, newest first, each with the answer it
    is about when that prediction is logged (``predicted_label`` etc. are None otherwise)."""
    f = t.feedback
    q = _feedback_and_answer().where(f.c.model == model).order_by(f.c.created_at.desc(), f.c.id.desc()).limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


# -- drift checks ---------------------------------------------------------------------------


def served_window(conn: Connection, model: str, version: int, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` answers of ``version`` (text, probabilities, created_at), newest
    first: the window a drift check compares with the version's reference."""
    p = t.predictions
    q = (
        select(p.c.text, p.c.probabilities, p.c.created_at)
        .where(p.c.model == model, p.c.version == version)
        .order_by(p.c.created_at.desc(), p.c.id.desc())
        .limit(limit)
    )
    return [{"text": text, "probabilities": orjson.loads(raw), "created_at": at} for text, raw, at in conn.execute(q)]


def _drift_check(row: RowMapping) -> DriftCheck:
    return DriftCheck(
        id=row["id"],
        model=row["model"],
        version=row["version"],
        n=row["n"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        drifted=bool(row["drifted"]),
        results=list(row["results"]),
        created_at=row["created_at"],
    )


def insert_drift_check(
    conn: Connection,
    *,
    model: str,
    version: int,
    n: int,
    window_start: datetime | None,
    window_end: datetime | None,
    drifted: bool,
    results: Sequence[dict[str, Any]],
    at: datetime,
) -> DriftCheck:
    values = {
        "model": model,
        "version": version,
        "n": n,
        "window_start": window_start,
        "window_end": window_end,
        "drifted": drifted,
        "results": list(results),
        "created_at": at,
    }
    check_id = conn.execute(insert(t.drift_checks).values(**values).returning(t.drift_checks.c.id)).scalar_one()
    row = conn.execute(select(t.drift_checks).where(t.drift_checks.c.id == check_id)).mappings().one()
    return _drift_check(row)


def latest_drift_check(conn: Connection, model: str, version: int | None = None) -> DriftCheck | None:
    """The model's newest drift check (of ``version``, if given)."""
    q = select(t.drift_checks).where(t.drift_checks.c.model == model)
    if version is not None:
        q = q.where(t.drift_checks.c.version == version)
    row = conn.execute(q.order_by(t.drift_checks.c.id.desc()).limit(1)).mappings().first()
    return _drift_check(row) if row is not None else None


def list_drift_checks(conn: Connection, model: str, limit: int = 20) -> list[DriftCheck]:
    """The model's newest ``limit`` drift checks, newest first."""
    q = select(t.drift_checks).where(t.drift_checks.c.model == model).order_by(t.drift_checks.c.id.desc()).limit(limit)
    return [_drift_check(r) for r in conn.execute(q).mappings()]


# -- webhooks and deliveries ----------------------------------------------------------------


def list_all_events(conn: Connection, after_id: int, limit: int = 500) -> list[Event]:
    """Events of every model after ``after_id``, oldest first (what notifiers follow)."""
    q = select(t.events).where(t.events.c.id > after_id).order_by(t.events.c.id).limit(limit)
    return [_event(r) for r in conn.execute(q).mappings()]


def get_event(conn: Connection, event_id: int) -> Event | None:
    row = conn.execute(select(t.events).where(t.events.c.id == event_id)).mappings().first()
    return _event(row) if row is not None else None


def max_event_id(conn: Connection) -> int:
    return int(conn.execute(select(func.max(t.events.c.id))).scalar() or 0)


def get_cursor(conn: Connection, name: str, *, for_update: bool = False) -> int | None:
    q = select(t.cursors.c.event_id).where(t.cursors.c.name == name)
    if for_update:
        q = q.with_for_update()
    value = conn.execute(q).scalar()
    return None if value is None else int(value)


def init_cursor(conn: Connection, name: str, event_id: int, at: datetime) -> None:
    """Create the cursor unless another process just did."""
    stmt_factory = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(stmt_factory(t.cursors).values(name=name, event_id=event_id, updated_at=at).on_conflict_do_nothing())


def set_cursor(conn: Connection, name: str, event_id: int, at: datetime) -> None:
    conn.execute(update(t.cursors).where(t.cursors.c.name == name).values(event_id=event_id, updated_at=at))


def _webhook(row: RowMapping) -> Webhook:
    return Webhook(
        id=row["id"],
        url=row["url"],
        model=row["model"],
        kinds=tuple(row["kinds"]),
        format=row["format"],
        active=bool(row["active"]),
        created_at=row["created_at"],
        secret=row["secret"],
    )


def insert_webhook(
    conn: Connection, *, url: str, model: str | None, kinds: Sequence[str], format: str, secret: str, at: datetime
) -> Webhook:
    result = conn.execute(
        insert(t.webhooks)
        .values(url=url, model=model, kinds=list(kinds), format=format, secret=secret, active=True, created_at=at)
        .returning(t.webhooks.c.id)
    )
    return get_webhook(conn, int(result.scalar_one()))


def get_webhook(conn: Connection, webhook_id: int, *, active_only: bool = True) -> Webhook:
    q = select(t.webhooks).where(t.webhooks.c.id == webhook_id)
    if active_only:
        q = q.where(t.webhooks.c.active.is_(True))
    row = conn.execute(q).mappings().first()
    if row is None:
        raise NotFoundError(f"webhook {webhook_id} not found", field="webhook_id")
    return _webhook(row)


def list_webhooks(conn: Connection, *, active_only: bool = True) -> list[Webhook]:
    q = select(t.webhooks).order_by(t.webhooks.c.id)
    if active_only:
        q = q.where(t.webhooks.c.active.is_(True))
    return [_webhook(r) for r in conn.execute(q).mappings()]


def deactivate_webhook(conn: Connection, webhook_id: int, at: datetime) -> int:
    """Remove a webhook (kept, inactive, with its delivery history); its pending deliveries
    fail. Returns how many were pending."""
    get_webhook(conn, webhook_id)  # NotFoundError when unknown or removed already
    conn.execute(update(t.webhooks).where(t.webhooks.c.id == webhook_id).values(active=False))
    result = conn.execute(
        update(t.deliveries)
        .where(t.deliveries.c.webhook_id == webhook_id, t.deliveries.c.status == DeliveryStatus.PENDING.value)
        .values(status=DeliveryStatus.FAILED.value, last_error="webhook removed", next_attempt_at=None)
    )
    return int(result.rowcount or 0)


def insert_deliveries(conn: Connection, pairs: Sequence[tuple[int, int]], at: datetime) -> int:
    """One pending delivery per (webhook id, event id); a pair that exists already is left
    alone (the unique constraint makes re-reading events harmless). Returns how many are new."""
    if not pairs:
        return 0
    stmt_factory = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    rows = [
        {
            "webhook_id": webhook_id,
            "event_id": event_id,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
        }
        for webhook_id, event_id in pairs
    ]
    stmt = stmt_factory(t.deliveries).on_conflict_do_nothing().returning(t.deliveries.c.id)
    return len(conn.execute(stmt, rows).scalars().all())


def _delivery(row: RowMapping) -> Delivery:
    return Delivery(
        id=row["id"],
        webhook_id=row["webhook_id"],
        event_id=row["event_id"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        delivered_at=row["delivered_at"],
        event_kind=row.get("event_kind"),
        event_model=row.get("event_model"),
    )


def _deliveries_with_events() -> Any:
    d, e = t.deliveries, t.events
    return select(d, e.c.kind.label("event_kind"), e.c.model.label("event_model")).select_from(
        d.outerjoin(e, e.c.id == d.c.event_id)
    )


def get_delivery(conn: Connection, delivery_id: int) -> Delivery:
    row = conn.execute(_deliveries_with_events().where(t.deliveries.c.id == delivery_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"delivery {delivery_id} not found", field="delivery_id")
    return _delivery(row)


def list_deliveries(
    conn: Connection, webhook_id: int, limit: int = 50, status: DeliveryStatus | None = None
) -> list[Delivery]:
    """A webhook's deliveries, newest first."""
    q = _deliveries_with_events().where(t.deliveries.c.webhook_id == webhook_id)
    if status is not None:
        q = q.where(t.deliveries.c.status == status.value)
    q = q.order_by(t.deliveries.c.id.desc()).limit(limit)
    return [_delivery(r) for r in conn.execute(q).mappings()]


def claim_delivery(conn: Connection, now: datetime, lease_until: datetime) -> Delivery | None:
    """Take the most overdue pending delivery of an active webhook: its next attempt moves to
    ``lease_until`` (so no other process takes it meanwhile; if this one dies, it is due again
    then) and its attempt count goes up. PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: the
    write transaction is exclusive. The conditional UPDATE guards both."""
    d, w = t.deliveries, t.webhooks
    due = and_(d.c.status == DeliveryStatus.PENDING.value, d.c.next_attempt_at <= now)
    q = (
        select(d.c.id)
        .select_from(d.join(w, w.c.id == d.c.webhook_id))
        .where(due, w.c.active.is_(True))
        .order_by(d.c.next_attempt_at, d.c.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=d)
    )
    delivery_id = conn.execute(q).scalar()
    if delivery_id is None:
        return None
    claimed = conn.execute(
        update(d)
        .where(d.c.id == delivery_id, due)
        .values(next_attempt_at=lease_until, attempts=d.c.attempts + 1)
        .returning(d.c.id)
    ).first()
    return get_delivery(conn, delivery_id) if claimed is not None else None


def record_delivery_attempt(
    conn: Connection,
    delivery_id: int,
    *,
    status: DeliveryStatus,
    status_code: int | None,
    error: str | None,
    next_attempt_at: datetime | None,
    delivered_at: datetime | None = None,
) -> None:
    conn.execute(
        update(t.deliveries)
        .where(t.deliveries.c.id == delivery_id)
        .values(
            status=status.value,
            last_status_code=status_code,
            last_error=error,
            next_attempt_at=next_attempt_at,
            delivered_at=delivered_at,
        )
    )


def count_pending_deliveries(conn: Connection) -> int:
    q = select(func.count()).select_from(t.deliveries).where(t.deliveries.c.status == DeliveryStatus.PENDING.value)
    return int(conn.execute(q).scalar_one())


def has_due_delivery(conn: Connection, now: datetime) -> bool:
    """Whether any delivery is due (a read, so an idle worker takes no write lock)."""
    d = t.deliveries
    q = select(d.c.id).where(d.c.status == DeliveryStatus.PENDING.value, d.c.next_attempt_at <= now).limit(1)
    return conn.execute(q).first() is not None


# -- privacy: a subject's data --------------------------------------------------------------


def subject_predictions(conn: Connection, subject_hash: str) -> list[dict[str, Any]]:
    p = t.predictions
    q = select(p).where(p.c.subject == subject_hash).order_by(p.c.created_at)
    out = []
    for row in conn.execute(q).mappings():
        data = dict(row)
        data["probabilities"] = orjson.loads(data["probabilities"])
        out.append(data)
    return out


def subject_feedback(conn: Connection, subject_hash: str, prediction_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The subject's own feedback and any feedback on the subject's predictions."""
    f = t.feedback
    clause = f.c.subject == subject_hash
    rows: dict[str, dict[str, Any]] = {r["id"]: dict(r) for r in conn.execute(select(f).where(clause)).mappings()}
    for start in range(0, len(prediction_ids), 500):
        chunk = list(prediction_ids[start : start + 500])
        for r in conn.execute(select(f).where(f.c.prediction_id.in_(chunk))).mappings():
            rows[r["id"]] = dict(r)
    return sorted(rows.values(), key=lambda r: (r["created_at"], r["id"]))


def _delete_in(conn: Connection, column: Any, ids: Sequence[str]) -> int:
    deleted = 0
    for start in range(0, len(ids), 500):
        deleted += conn.execute(column.table.delete().where(column.in_(list(ids[start : start + 500])))).rowcount
    return deleted


def delete_predictions(conn: Connection, ids: Sequence[str]) -> int:
    return _delete_in(conn, t.predictions.c.id, ids)


def delete_feedback(conn: Connection, ids: Sequence[str]) -> int:
    return _delete_in(conn, t.feedback.c.id, ids)


def delete_shadow_predictions(conn: Connection, prediction_ids: Sequence[str]) -> int:
    return _delete_in(conn, t.shadow_predictions.c.prediction_id, prediction_ids)


def list_snapshots(conn: Connection, model: str) -> list[dict[str, Any]]:
    q = select(t.snapshots).where(t.snapshots.c.model == model).order_by(t.snapshots.c.created_at)
    return [dict(r) for r in conn.execute(q).mappings()]


def mark_snapshot_erasure(conn: Connection, snapshot_hash: str, rows: int, at: datetime) -> None:
    counts = dict(conn.execute(select(t.snapshots.c.counts).where(t.snapshots.c.hash == snapshot_hash)).scalar_one())
    counts["erasures"] = [*counts.get("erasures", []), {"rows": rows, "at": at.isoformat()}]
    conn.execute(update(t.snapshots).where(t.snapshots.c.hash == snapshot_hash).values(counts=counts))


def mark_version_erasure(conn: Connection, model: str, version: int, at: datetime) -> None:
    v = t.model_versions
    where = and_(v.c.model == model, v.c.version == version)
    metrics = dict(conn.execute(select(v.c.metrics).where(where)).scalar_one())
    metrics["erasures"] = [*metrics.get("erasures", []), {"at": at.isoformat()}]
    conn.execute(update(v).where(where).values(metrics=metrics))


# -- active learning ------------------------------------------------------------------------


def unlabelled_predictions(conn: Connection, model: str, version: int, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` answers of ``version`` that no feedback event refers to, newest
    first (id, text, label, probabilities, created_at): what the loop may still ask about."""
    p, f = t.predictions, t.feedback
    has_feedback = select(f.c.id).where(f.c.prediction_id == p.c.id, f.c.model == p.c.model).exists()
    q = (
        select(p.c.id, p.c.text, p.c.label, p.c.probabilities, p.c.created_at)
        .where(p.c.model == model, p.c.version == version, ~has_feedback)
        .order_by(p.c.created_at.desc(), p.c.id.desc())
        .limit(limit)
    )
    return [
        {"id": pid, "text": text, "label": label, "probabilities": orjson.loads(raw), "created_at": at}
        for pid, text, label, raw, at in conn.execute(q)
    ]
