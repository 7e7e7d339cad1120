"""Feedback events, and feedback joined with the answer it is about.
Takes and returns domain records; table rows never leave ``store``."""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from itertools import chain
from typing import Any

import orjson
from sqlalchemy import JSON, ColumnElement, Connection, Select, and_, delete, func, or_, select
from sqlalchemy.engine import Dialect, RowMapping

from learnloop.domain import Feedback, FeedbackEvent, FeedbackKind, Served
from learnloop.errors import ConflictError, NotFoundError
from learnloop.nesting import readable_json
from learnloop.store import tables as t
from learnloop.store.db import delete_in
from learnloop.store.repositories.predictions import predictions_by_id

_F = tuple(c.label(f"f_{c.name}") for c in t.feedback.columns)
_P = (
    t.predictions.c.id.label("p_id"),
    t.predictions.c.version.label("p_version"),
    t.predictions.c.route.label("p_route"),
    t.predictions.c.text.label("p_text"),
    t.predictions.c.answer.label("p_answer"),
    t.predictions.c.created_at.label("p_created_at"),
)
_ANSWER_OF = and_(t.predictions.c.id == t.feedback.c.prediction_id, t.predictions.c.model == t.feedback.c.model)


def _feedback(row: Mapping[str, Any] | RowMapping, prefix: str = "") -> Feedback:
    return Feedback(
        id=row[f"{prefix}id"],
        model=row[f"{prefix}model"],
        kind=FeedbackKind(row[f"{prefix}kind"]),
        prediction_id=row[f"{prefix}prediction_id"],
        client_id=row[f"{prefix}client_id"],
        payload=dict(row[f"{prefix}payload"] or {}),
        subject=row[f"{prefix}subject"],
        metadata=readable_json(row[f"{prefix}metadata"]),
        created_at=row[f"{prefix}created_at"],
    )


def _event(row: RowMapping) -> FeedbackEvent:
    served = None
    if row["p_id"] is not None:
        served = Served(
            prediction_id=row["p_id"],
            version=row["p_version"],
            route=row["p_route"],
            text=row["p_text"],
            answer=orjson.loads(row["p_answer"]),
            created_at=row["p_created_at"],
        )
    shadow = row.get("s_answer")
    return FeedbackEvent(_feedback(row, "f_"), served, None if shadow is None else orjson.loads(shadow))


def _with_related(conn: Connection, events: list[FeedbackEvent]) -> list[FeedbackEvent]:
    """``events`` with ``related`` filled where an event names a second logged answer (a
    preference's rejected one, ``payload.rejected_prediction_id``, of the same model); read
    each time, so a rejected answer logged after its preference joins on the next read."""
    wanted: dict[str, set[str]] = {}
    for event in events:
        rejected = event.feedback.payload.get("rejected_prediction_id")
        if event.kind == FeedbackKind.PREFERENCE and isinstance(rejected, str):
            wanted.setdefault(event.feedback.model, set()).add(rejected)
    if not wanted:
        return events
    found = {
        (model, pid): prediction
        for model, ids in wanted.items()
        for pid, prediction in predictions_by_id(conn, sorted(ids), model).items()
    }
    out = []
    for event in events:
        related = found.get((event.feedback.model, str(event.feedback.payload.get("rejected_prediction_id"))))
        if event.kind != FeedbackKind.PREFERENCE or related is None:
            out.append(event)
            continue
        served = Served(related.id, related.version, related.route, related.text, related.answer, related.created_at)
        out.append(replace(event, related=served))
    return out


def _events(*, outer: bool = False) -> Select[Any]:
    """Feedback events with the answer each is about (``outer``: also the events whose
    prediction is not logged, without an answer)."""
    f, p = t.feedback, t.predictions
    return select(*_F, *_P).select_from(f.outerjoin(p, _ANSWER_OF) if outer else f.join(p, _ANSWER_OF))


def judged_answers(
    conn: Connection, model: str, version: int | None, limit: int, kinds: Collection[FeedbackKind] = ()
) -> list[FeedbackEvent]:
    """The newest ``limit`` feedback events on answers of ``version`` (every version if None),
    of ``kinds`` (every kind if empty), newest first, with what was answered: the evidence
    behind online accuracy and the online mean rating."""
    f, p = t.feedback, t.predictions
    q = _events().where(f.c.model == model)
    if version is not None:
        q = q.where(p.c.version == version)
    if kinds:
        q = q.where(f.c.kind.in_([k.value for k in kinds]))
    q = q.order_by(f.c.created_at.desc(), f.c.id.desc()).limit(limit)
    return _with_related(conn, [_event(r) for r in conn.execute(q).mappings()])


def judged_served_between(
    conn: Connection,
    model: str,
    version: int,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    kinds: Collection[FeedbackKind] = (),
) -> list[FeedbackEvent]:
    """Feedback events (of ``kinds``; every kind if empty) on the answers ``version`` served
    from ``start`` (included) to ``end`` (excluded; None: no bound), the newest answers first,
    at most ``limit``: one version's evidence on one side of a promotion."""
    f, p = t.feedback, t.predictions
    q = _events().where(f.c.model == model, p.c.version == version)
    if start is not None:
        q = q.where(p.c.created_at >= start)
    if end is not None:
        q = q.where(p.c.created_at < end)
    if kinds:
        q = q.where(f.c.kind.in_([k.value for k in kinds]))
    q = q.order_by(p.c.created_at.desc(), p.c.id.desc(), f.c.created_at.desc(), f.c.id.desc()).limit(limit)
    return _with_related(conn, [_event(r) for r in conn.execute(q).mappings()])


def arm_feedback(conn: Connection, model: str, since: datetime, versions: Sequence[int]) -> list[FeedbackEvent]:
    """Feedback on the predictions the given versions served since ``since``, oldest first,
    with what was answered (the live test's evidence for canaries and A/B tests)."""
    f, p = t.feedback, t.predictions
    q = (
        _events()
        .where(f.c.model == model, p.c.created_at >= since, p.c.version.in_(list(versions)))
        .order_by(f.c.created_at, f.c.id)
    )
    return _with_related(conn, [_event(r) for r in conn.execute(q).mappings()])


def shadow_feedback(conn: Connection, model: str, rollout_id: int) -> list[FeedbackEvent]:
    """Feedback on served predictions that a shadow also answered: both answers, oldest first."""
    f, p, s = t.feedback, t.predictions, t.shadow_predictions
    q = (
        select(*_F, *_P, s.c.answer.label("s_answer"))
        .select_from(f.join(p, _ANSWER_OF).join(s, s.c.prediction_id == p.c.id))
        .where(f.c.model == model, s.c.rollout_id == rollout_id)
        .order_by(f.c.created_at, f.c.id)
    )
    return _with_related(conn, [_event(r) for r in conn.execute(q).mappings()])


FEEDBACK_COLUMNS = tuple(str(c.name) for c in t.feedback.columns)  # plain str (not quoted_name)
_JSON_COLUMNS = frozenset(str(c.name) for c in t.feedback.columns if isinstance(c.type, JSON))
# Rows per multi-row INSERT on SQLite: a power of two up to this (9 columns: far under SQLite's
# 32,766 variables; ten statement texts in all stay prepared), as for the prediction log.
_SQLITE_CHUNK_MAX = 512


def insert_feedback_many(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[Feedback]:
    """Insert feedback rows; a row whose (model, client_id) exists already is not inserted
    again. Returns, for each input row in order, the stored event (the first one on a retry).
    Only retries are read back: ``RETURNING`` says which rows went in.

    One statement per batch on PostgreSQL (``INSERT ... SELECT FROM unnest(arrays)``: the
    same short text every time, so the driver parses it once; a multi-row ``VALUES`` of
    thousands of placeholders was parsed anew each batch, most of the write's time), and
    multi-row ``INSERT``s on SQLite: the values are encoded once here, not per row and column
    by the statement compiler. The JSON columns are written as SQLAlchemy's ``JSON`` writes
    them (``json.dumps``; ``None`` as JSON ``null``)."""
    if not rows:
        return []
    encoded = _encode(conn.dialect, rows)
    inserted: set[str] = set()
    if conn.dialect.name == "postgresql":
        arrays = tuple(list(column) for column in zip(*encoded, strict=True))
        inserted.update(conn.exec_driver_sql(_PG_INSERT, arrays).scalars())
    else:
        start = 0
        while start < len(encoded):
            size = min(_SQLITE_CHUNK_MAX, 1 << ((len(encoded) - start).bit_length() - 1))
            values = tuple(chain.from_iterable(encoded[start : start + size]))
            inserted.update(conn.exec_driver_sql(_sqlite_insert(size), values).scalars())
            start += size
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


def _encode(dialect: Dialect, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows as the driver takes them, in ``FEEDBACK_COLUMNS`` order."""
    to_db = t.feedback.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    out = []
    when: Any = None
    when_db: Any = None
    for row in rows:
        values = [_json(row[c]) if c in _JSON_COLUMNS else row[c] for c in FEEDBACK_COLUMNS]
        if to_db is not None:
            if values[_CREATED_AT] is not when:  # a batch's rows share one timestamp: converted once
                when = values[_CREATED_AT]
                when_db = to_db(when)
            values[_CREATED_AT] = when_db
        out.append(tuple(values))
    return out


def _json(value: Any) -> str:
    return "null" if value is None else json.dumps(value)


_CREATED_AT = FEEDBACK_COLUMNS.index("created_at")


def _pg_type(column: str) -> str:
    return "timestamptz" if column == "created_at" else "text"


_PG_INSERT = (
    f"INSERT INTO feedback ({', '.join(FEEDBACK_COLUMNS)}) "
    f"SELECT {', '.join(f'{c}::json' if c in _JSON_COLUMNS else c for c in FEEDBACK_COLUMNS)} "
    f"FROM unnest({', '.join(f'%s::{_pg_type(c)}[]' for c in FEEDBACK_COLUMNS)}) AS u({', '.join(FEEDBACK_COLUMNS)}) "
    "ON CONFLICT DO NOTHING RETURNING id"
)


@functools.cache
def _sqlite_insert(rows: int) -> str:
    placeholder = "(" + ", ".join("?" * len(FEEDBACK_COLUMNS)) + ")"
    values = ", ".join([placeholder] * rows)
    return f"INSERT INTO feedback ({', '.join(FEEDBACK_COLUMNS)}) VALUES {values} ON CONFLICT DO NOTHING RETURNING id"


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
        q = q.where(t.feedback.c.created_at >= since)
    return {kind: int(n) for kind, n in conn.execute(q.group_by(t.feedback.c.kind))}


def count_training_feedback_since(
    conn: Connection,
    model: str,
    since: datetime | None,
    limit: int,
    kinds: Collection[FeedbackKind],
    signals: Collection[str] = (),
) -> int:
    """Feedback events at or after ``since`` (a retrain's watermark: its snapshot took what is
    strictly before it) of ``kinds`` (and implicit ones whose signal is one of ``signals``): what
    the model's task says can become training rows. Counted up to ``limit`` (the trigger only
    needs to know whether the threshold is reached, not how far past it)."""
    f = t.feedback
    which: ColumnElement[bool] = f.c.kind.in_([k.value for k in kinds])
    if signals:
        signal = f.c.payload["signal"].as_string()
        which = or_(which, and_(f.c.kind == FeedbackKind.IMPLICIT.value, signal.in_(sorted(signals))))
    q = select(f.c.id).where(f.c.model == model, which)
    if since is not None:
        q = q.where(f.c.created_at >= since)
    bounded = q.limit(limit).subquery()
    return int(conn.execute(select(func.count()).select_from(bounded)).scalar_one())


def feedback_with_predictions(
    conn: Connection, model: str, until: datetime, *, snapshot: bool = False
) -> list[FeedbackEvent]:
    """Feedback up to ``until``, each with its answer when that prediction is logged, oldest
    first. ``snapshot``: strictly before ``until`` (a retrain's cutoff), so that the snapshot and
    the volume trigger counting from it (``count_training_feedback_since``) split the events
    stamped at the cutoff the same way: into the next snapshot, whether they arrived before this
    read or just after."""
    f = t.feedback
    until_ok = f.c.created_at < until if snapshot else f.c.created_at <= until
    q = _events(outer=True).where(f.c.model == model, until_ok).order_by(f.c.created_at, f.c.id)
    return _with_related(conn, [_event(r) for r in conn.execute(q).mappings()])


def recent_feedback(conn: Connection, model: str, limit: int) -> list[FeedbackEvent]:
    """The newest ``limit`` feedback events of ``model``, newest first, each with the answer it
    is about when that prediction is logged."""
    f = t.feedback
    q = _events(outer=True).where(f.c.model == model).order_by(f.c.created_at.desc(), f.c.id.desc()).limit(limit)
    return _with_related(conn, [_event(r) for r in conn.execute(q).mappings()])


def feedback_on(conn: Connection, model: str, prediction_ids: Sequence[str]) -> list[FeedbackEvent]:
    """Every feedback event on the given answers of ``model``, newest first, with its answer."""
    f = t.feedback
    found: list[FeedbackEvent] = []
    for start in range(0, len(prediction_ids), 500):
        chunk = list(prediction_ids[start : start + 500])
        q = _events().where(f.c.model == model, f.c.prediction_id.in_(chunk))
        found += [_event(r) for r in conn.execute(q).mappings()]
    found.sort(key=lambda e: (e.created_at, e.id), reverse=True)
    return _with_related(conn, found)


def subject_feedback(conn: Connection, subject_hash: str, prediction_ids: Sequence[str]) -> list[Feedback]:
    """The subject's own feedback and any feedback on the subject's predictions, oldest first."""
    f = t.feedback
    found = {r["id"]: _feedback(r) for r in conn.execute(select(f).where(f.c.subject == subject_hash)).mappings()}
    for start in range(0, len(prediction_ids), 500):
        chunk = list(prediction_ids[start : start + 500])
        for r in conn.execute(select(f).where(f.c.prediction_id.in_(chunk))).mappings():
            found[r["id"]] = _feedback(r)
    return sorted(found.values(), key=lambda fb: (fb.created_at, fb.id))


def delete_feedback(conn: Connection, ids: Sequence[str]) -> int:
    return delete_in(conn, t.feedback.c.id, ids)


def rejected_in_preferences(conn: Connection, model: str, since: datetime) -> set[str]:
    """The answers of ``model`` that a preference since ``since`` named as the rejected one
    (a preference is stored on its chosen answer, so the rejected one has no event of its own)."""
    f = t.feedback
    rejected = f.c.payload["rejected_prediction_id"].as_string()
    q = select(rejected).where(
        f.c.model == model, f.c.created_at >= since, f.c.kind == FeedbackKind.PREFERENCE.value, rejected.is_not(None)
    )
    return {str(r) for r in conn.execute(q).scalars()}


def delete_for_model(conn: Connection, model: str) -> int:
    """Every feedback event sent to ``model`` (a deleted model)."""
    return conn.execute(delete(t.feedback).where(t.feedback.c.model == model)).rowcount
