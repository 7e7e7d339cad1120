"""The prediction log (written in batches) and what shadows answered.
Takes and returns domain records; table rows never leave ``store``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from itertools import chain
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.engine import Dialect, RowMapping

from learnloop.domain import AnswerSample, Prediction
from learnloop.store import tables as t
from learnloop.store.db import delete_in


def _prediction(row: Mapping[str, Any] | RowMapping) -> Prediction:
    return Prediction(
        id=row["id"],
        model=row["model"],
        version=row["version"],
        route=row["route"],
        text=row["text"],
        answer=orjson.loads(row["answer"]),
        subject=row["subject"],
        created_at=row["created_at"],
        latency_ms=row["latency_ms"],
    )


def recent_answers(conn: Connection, model: str, version: int, limit: int) -> list[dict[str, Any]]:
    """The answers of the newest ``limit`` predictions of ``version`` (newest first)."""
    p = t.predictions
    q = (
        select(p.c.answer)
        .where(p.c.model == model, p.c.version == version)
        .order_by(p.c.created_at.desc())
        .limit(limit)
    )
    return [orjson.loads(raw) for raw in conn.execute(q).scalars()]


def arm_answers(
    conn: Connection, model: str, since: datetime, version: int, routes: Sequence[str], limit: int
) -> list[AnswerSample]:
    """The newest ``limit`` answers a version served on the given routes since ``since``, with
    their latencies: what the guardrails watch."""
    p = t.predictions
    q = (
        select(p.c.answer, p.c.latency_ms)
        .where(p.c.model == model, p.c.created_at >= since, p.c.version == version, p.c.route.in_(list(routes)))
        .order_by(p.c.created_at.desc())
        .limit(limit)
    )
    return [AnswerSample(orjson.loads(raw), latency) for raw, latency in conn.execute(q)]


def count_routes(conn: Connection, model: str, since: datetime, routes: Sequence[str]) -> dict[str, int]:
    p = t.predictions
    q = (
        select(p.c.route, func.count())
        .where(p.c.model == model, p.c.created_at >= since, p.c.route.in_(list(routes)))
        .group_by(p.c.route)
    )
    return {route: int(n) for route, n in conn.execute(q)}


def shadow_answers(conn: Connection, rollout_id: int, limit: int) -> list[AnswerSample]:
    """The newest ``limit`` answers of a shadow rollout, with their latencies."""
    s = t.shadow_predictions
    q = (
        select(s.c.answer, s.c.latency_ms)
        .where(s.c.rollout_id == rollout_id)
        .order_by(s.c.created_at.desc())
        .limit(limit)
    )
    return [AnswerSample(orjson.loads(raw), latency) for raw, latency in conn.execute(q)]


def insert_shadow_predictions(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Rows of ``shadow_predictions``; ``answer`` is JSON text."""
    if rows:
        conn.execute(insert(t.shadow_predictions), list(rows))


PREDICTION_COLUMNS = tuple(str(c.name) for c in t.predictions.columns)  # plain str (not quoted_name)


PredictionRow = tuple[Any, ...]  # values in PREDICTION_COLUMNS order, ready for the driver


# Rows per multi-row INSERT on SQLite: a power of two up to this (9 columns: far under SQLite's
# 32,766 variables). Each distinct statement text stays prepared in the connection's statement
# cache (128 of them); one text per batch size (1..2,000) held up to ~180 MB there. Powers of
# two make ten texts in all (measured: RSS flat).
_SQLITE_CHUNK_MAX = 512


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
        start = 0
        while start < len(rows):
            size = min(_SQLITE_CHUNK_MAX, 1 << ((len(rows) - start).bit_length() - 1))
            conn.exec_driver_sql(_sqlite_insert(size), tuple(chain.from_iterable(rows[start : start + size])))
            start += size
    else:
        conn.execute(insert(t.predictions), [dict(zip(PREDICTION_COLUMNS, row, strict=True)) for row in rows])


@functools.cache
def _sqlite_insert(rows: int) -> str:
    placeholder = "(" + ", ".join("?" * len(PREDICTION_COLUMNS)) + ")"
    return f"INSERT INTO predictions ({', '.join(PREDICTION_COLUMNS)}) VALUES " + ", ".join([placeholder] * rows)


def count_predictions(conn: Connection, model: str | None = None) -> int:
    q = select(func.count()).select_from(t.predictions)
    if model is not None:
        q = q.where(t.predictions.c.model == model)
    return int(conn.execute(q).scalar_one())


def count_served_since(conn: Connection, model: str, version: int, since: datetime | None, cap: int) -> int:
    """How many answers ``version`` gave after ``since`` (all of them if None), counted up to
    ``cap`` (a due check needs no more)."""
    p = t.predictions
    q = select(p.c.id).where(p.c.model == model, p.c.version == version)
    if since is not None:
        q = q.where(p.c.created_at > since)
    return int(conn.execute(select(func.count()).select_from(q.limit(cap).subquery())).scalar_one())


def count_served_between(conn: Connection, model: str, version: int, start: datetime, end: datetime | None) -> int:
    """How many answers ``version`` gave from ``start`` (included) to ``end`` (excluded; None:
    up to now): the traffic a version served as champion."""
    p = t.predictions
    q = select(func.count()).select_from(p).where(p.c.model == model, p.c.version == version, p.c.created_at >= start)
    if end is not None:
        q = q.where(p.c.created_at < end)
    return int(conn.execute(q).scalar_one())


def get_prediction(conn: Connection, prediction_id: str) -> Prediction | None:
    row = conn.execute(select(t.predictions).where(t.predictions.c.id == prediction_id)).mappings().first()
    return None if row is None else _prediction(row)


def predictions_by_id(conn: Connection, ids: Sequence[str], model: str | None = None) -> dict[str, Prediction]:
    """The logged predictions among ``ids`` (of ``model`` only, when given), by id; read in
    chunks, so a long list never exceeds a backend's limit on bound parameters."""
    p = t.predictions
    wanted = sorted(set(ids))
    found: dict[str, Prediction] = {}
    for start in range(0, len(wanted), 500):
        q = select(p).where(p.c.id.in_(wanted[start : start + 500]))
        if model is not None:
            q = q.where(p.c.model == model)
        for row in conn.execute(q).mappings():
            found[row["id"]] = _prediction(row)
    return found


def served_window(conn: Connection, model: str, version: int, limit: int) -> list[Prediction]:
    """The newest ``limit`` answers of ``version``, newest first: the window a drift check
    compares with the version's reference."""
    return _newest_served(conn, model, version, limit)


def _newest_served(conn: Connection, model: str, version: int, limit: int, *where: Any) -> list[Prediction]:
    p = t.predictions
    q = select(p).where(p.c.model == model, p.c.version == version, *where)
    q = q.order_by(p.c.created_at.desc(), p.c.id.desc()).limit(limit)
    return [_prediction(row) for row in conn.execute(q).mappings()]


def served_between(
    conn: Connection, model: str, version: int, start: datetime, end: datetime, limit: int
) -> list[Prediction]:
    """The newest ``limit`` answers of ``version`` served from ``start`` to ``end`` (both
    included), newest first: a past drift check's window, read again."""
    p = t.predictions
    return _newest_served(conn, model, version, limit, p.c.created_at >= start, p.c.created_at <= end)


def subject_predictions(conn: Connection, subject_hash: str) -> list[Prediction]:
    p = t.predictions
    q = select(p).where(p.c.subject == subject_hash).order_by(p.c.created_at)
    return [_prediction(row) for row in conn.execute(q).mappings()]


def delete_predictions(conn: Connection, ids: Sequence[str]) -> int:
    return delete_in(conn, t.predictions.c.id, ids)


def delete_shadow_predictions(conn: Connection, prediction_ids: Sequence[str]) -> int:
    return delete_in(conn, t.shadow_predictions.c.prediction_id, prediction_ids)


def unlabelled_predictions(conn: Connection, model: str, version: int, limit: int) -> list[Prediction]:
    """The newest ``limit`` answers of ``version`` that no feedback event refers to, newest
    first: what the loop may still ask about."""
    p, f = t.predictions, t.feedback
    has_feedback = select(f.c.id).where(f.c.prediction_id == p.c.id, f.c.model == p.c.model).exists()
    q = (
        select(p)
        .where(p.c.model == model, p.c.version == version, ~has_feedback)
        .order_by(p.c.created_at.desc(), p.c.id.desc())
        .limit(limit)
    )
    return [_prediction(row) for row in conn.execute(q).mappings()]


def delete_for_model(conn: Connection, model: str) -> dict[str, int]:
    """Every logged answer of ``model`` and every shadow answer of its versions (a deleted model)."""
    return {
        "predictions": conn.execute(delete(t.predictions).where(t.predictions.c.model == model)).rowcount,
        "shadow_predictions": conn.execute(
            delete(t.shadow_predictions).where(t.shadow_predictions.c.model == model)
        ).rowcount,
    }
