"""Scoped API keys and dashboard sessions. Only hashes are stored, never a secret.
Takes and returns domain records; table rows never leave ``store``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, exists, insert, inspect, select, update
from sqlalchemy.engine import RowMapping

from learnloop.domain import ApiKey, Rate, Scope, parse_rate
from learnloop.store import tables as t


def _key(row: RowMapping) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        scopes=tuple(Scope(s) for s in row["scopes"]),
        models=tuple(row["models"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        created_by=row["created_by"],
        rate=parse_rate(row["rate"]) if row["rate"] else None,
    )


def insert_key(
    conn: Connection,
    *,
    name: str,
    prefix: str,
    secret_hash: str,
    scopes: Sequence[Scope],
    models: Sequence[str],
    expires_at: datetime | None,
    created_by: str,
    at: datetime,
    rate: Rate | None = None,
) -> ApiKey:
    key_id = conn.execute(
        insert(t.api_keys)
        .values(
            name=name,
            prefix=prefix,
            secret_hash=secret_hash,
            scopes=[s.value for s in scopes],
            models=list(models),
            created_at=at,
            expires_at=expires_at,
            created_by=created_by,
            rate=str(rate) if rate else None,
        )
        .returning(t.api_keys.c.id)
    ).scalar_one()
    row = conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id)).mappings().one()
    return _key(row)


def key_by_prefix(conn: Connection, prefix: str) -> tuple[ApiKey, str] | None:
    """The key with this public prefix and its stored hash."""
    row = conn.execute(select(t.api_keys).where(t.api_keys.c.prefix == prefix)).mappings().first()
    return None if row is None else (_key(row), row["secret_hash"])


def key_by_hash(conn: Connection, secret_hash: str) -> tuple[ApiKey, str] | None:
    """The key whose whole-key hash this is (a dashboard session's key)."""
    row = conn.execute(select(t.api_keys).where(t.api_keys.c.secret_hash == secret_hash)).mappings().first()
    return None if row is None else (_key(row), row["secret_hash"])


def unrevoked_key_named(conn: Connection, name: str) -> ApiKey | None:
    q = select(t.api_keys).where(t.api_keys.c.name == name, t.api_keys.c.revoked_at.is_(None))
    row = conn.execute(q.order_by(t.api_keys.c.id.desc())).mappings().first()
    return None if row is None else _key(row)


def list_keys(conn: Connection, *, include_revoked: bool = False) -> list[ApiKey]:
    q = select(t.api_keys).order_by(t.api_keys.c.id)
    if not include_revoked:
        q = q.where(t.api_keys.c.revoked_at.is_(None))
    return [_key(r) for r in conn.execute(q).mappings()]


def revoke_key(conn: Connection, key_id: int, at: datetime) -> None:
    conn.execute(update(t.api_keys).where(t.api_keys.c.id == key_id).values(revoked_at=at))
    conn.execute(delete(t.sessions).where(t.sessions.c.key_hash == _hash_of(conn, key_id)))


def _hash_of(conn: Connection, key_id: int) -> str:
    return str(conn.execute(select(t.api_keys.c.secret_hash).where(t.api_keys.c.id == key_id)).scalar_one())


def table_exists(conn: Connection) -> bool:
    return inspect(conn).has_table(t.api_keys.name)


def any_key(conn: Connection) -> bool:
    """Whether a key was ever created here (revoked ones count: auth, once on, stays on)."""
    return bool(conn.execute(select(exists().select_from(t.api_keys))).scalar())


def insert_session(conn: Connection, *, token_hash: str, key_hash: str, at: datetime, expires_at: datetime) -> None:
    conn.execute(delete(t.sessions).where(t.sessions.c.expires_at <= at))  # the ended ones go as new ones come
    conn.execute(
        insert(t.sessions).values(token_hash=token_hash, key_hash=key_hash, created_at=at, expires_at=expires_at)
    )


def session_key_hash(conn: Connection, token_hash: str, now: datetime) -> str | None:
    """The hash of the key that opened this session, while it lasts."""
    q = select(t.sessions.c.key_hash).where(t.sessions.c.token_hash == token_hash, t.sessions.c.expires_at > now)
    value = conn.execute(q).scalar()
    return None if value is None else str(value)


def delete_session(conn: Connection, token_hash: str) -> None:
    conn.execute(delete(t.sessions).where(t.sessions.c.token_hash == token_hash))
