"""Feedback events, and feedback joined with the answer it is about.
Takes and returns domain records; table rows never leave ``store``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping

from learnloop.domain import (
    Feedback,
    FeedbackKind,
)
from learnloop.errors import ConflictError, NotFoundError
from learnloop.store import tables as t
from learnloop.store.db import delete_in

LABELLED_KINDS = (
    FeedbackKind.LABEL,
    FeedbackKind.EXAMPLE,
    FeedbackKind.THUMBS,
    FeedbackKind.RATING,
)


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


def recent_feedback(conn: Connection, model: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` feedback events of ``model``, newest first, each with the answer it
    is about when that prediction is logged (``predicted_label`` etc. are None otherwise)."""
    f = t.feedback
    q = _feedback_and_answer().where(f.c.model == model).order_by(f.c.created_at.desc(), f.c.id.desc()).limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


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


def delete_feedback(conn: Connection, ids: Sequence[str]) -> int:
    return delete_in(conn, t.feedback.c.id, ids)
