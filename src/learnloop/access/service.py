"""``AccessService``: scoped keys (create, list, revoke), the principal a credential stands
for, and dashboard sessions.

* **When auth is on.** Once the server has the single admin key (``settings.api_key``), is told
  to require keys (a non-loopback ``serve``), or a scoped key was ever created in its database,
  every route but the public ones needs a credential. On loopback without any, everything is
  open (``OPEN``), as the embedded default has always been.
* **Looking a key up.** A scoped key is found by its public prefix and checked against the
  stored SHA-256 with ``hmac.compare_digest``. Principals are cached by that hash for
  ``key_cache_seconds`` (the hot path reads no table): a key revoked here stops at once, one
  revoked by another process within that time; expiry is checked on every use.
* **Bearer JWTs** (when ``settings.access.jwt`` is set): ``TokenVerifier`` checks them; a
  token's principal is ``jwt:<sub>`` with the scopes (and models) its claims give. A server
  that accepts JWTs always requires a credential.
* **Rates.** ``admit`` takes a request from the principal's token bucket (its key's own rate,
  else ``settings.access.rate``), ``admit_subjects`` one per feedback event from its subject's
  (``subject_rate``); in Redis when ``redis_url`` is set (``limits.py``).
* **Sessions.** A dashboard login stores the SHA-256 of a random cookie with the hash of the key
  that opened it; each request finds the key again, so a revoked or expired key, or a changed
  admin key, ends its sessions. Logout deletes the row.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Connection

from learnloop.access import keys
from learnloop.access.audit import AuditTrail
from learnloop.access.limits import Decision, RateLimitedError, buckets_for
from learnloop.access.principal import OPEN, Principal
from learnloop.access.throttle import FailureThrottle
from learnloop.access.tokens import TokenVerifier, looks_like_jwt
from learnloop.clock import Clock
from learnloop.config import Settings
from learnloop.domain import SERVER_TRAIL, ApiKey, Rate, Scope, parse_rate
from learnloop.errors import ConflictError, NotFoundError, ValidationError
from learnloop.store.db import Database
from learnloop.store.repositories import events as event_repo
from learnloop.store.repositories import keys as key_repo
from learnloop.telemetry import Metrics

log = logging.getLogger(__name__)

ADMIN_KEY_NAME = "api-key"  # the actor of the single admin key, as before scoped keys
MAX_CACHED = 10_000


def keys_exist(database_url: str) -> bool:
    """Whether the database holds a key (before services are built: ``serve`` asks this to
    decide whether a non-loopback host has credentials). A database not migrated has none."""
    db = Database(database_url)
    try:
        with db.read() as conn:
            return key_repo.table_exists(conn) and key_repo.any_key(conn)
    finally:
        db.dispose()


class AccessService:
    def __init__(self, db: Database, clock: Clock, settings: Settings, metrics: Metrics | None = None) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings.access
        self.admin_hash = keys.secret_hash(settings.api_key) if settings.api_key else None
        self.throttle = FailureThrottle(self.settings.failure_limit, self.settings.failure_window_seconds)
        failures = metrics.auth_failures if metrics is not None else None
        self.audit = AuditTrail(
            db,
            clock,
            window_seconds=self.settings.failure_window_seconds,
            burst_threshold=self.settings.burst_threshold,
            max_failure_events=self.settings.audit_failure_events,
            counted=(lambda reason: failures.labels(reason).inc()) if failures is not None else (lambda reason: None),
        )
        self.tokens = TokenVerifier(self.settings.jwt) if self.settings.jwt is not None else None
        self._required = settings.api_key is not None or self.settings.require_keys or self.tokens is not None
        self._required_checked = 0.0
        self.buckets = buckets_for(self.settings.redis_url)
        self.default_rate = parse_rate(self.settings.rate) if self.settings.rate else None
        self.subject_rate = parse_rate(self.settings.subject_rate) if self.settings.subject_rate else None
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    # -- is auth on? -------------------------------------------------------------------------

    def required(self) -> bool:
        """Whether requests need a credential; once on, on for the life of the process."""
        if self._required:
            return True
        now = time.monotonic()
        if now - self._required_checked >= self.settings.key_cache_seconds:
            self._required_checked = now
            with self.db.read() as conn:
                self._required = key_repo.any_key(conn)
        return self._required

    # -- credentials -------------------------------------------------------------------------

    def authenticate(self, given: str) -> Principal | None:
        """The principal a key stands for, or None (unknown, revoked, expired)."""
        return self.principal_for_hash(keys.secret_hash(given), keys.prefix_of(given))

    async def authenticate_bearer(self, given: str) -> Principal | None:
        """A bearer credential: a JWT when the server accepts them and it is shaped like one
        (refused with ``InvalidTokenError``; 503 ``AuthUnavailableError`` while a JWKS URL has
        given no key yet), else a key."""
        if self.tokens is not None and looks_like_jwt(given):
            return await self.tokens.principal(given)
        return self.authenticate(given)

    def principal_for_hash(self, key_hash: str, prefix: str | None = None) -> Principal | None:
        if self.admin_hash is not None and hmac.compare_digest(key_hash, self.admin_hash):
            return Principal(ADMIN_KEY_NAME, frozenset({Scope.ADMIN}), key_hash=key_hash)
        cached = self._cache.get(key_hash)
        now = time.monotonic()
        if cached is None or now - cached[0] >= self.settings.key_cache_seconds:
            principal = self._load(key_hash, prefix)
            if principal is None:
                self._cache.pop(key_hash, None)
                return None
            with self._lock:
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
                self._cache[key_hash] = (now, principal)
            cached = (now, principal)
        principal = cached[1]
        if principal.expires_at is not None and self.clock.now() >= principal.expires_at:
            return None
        return principal

    def _load(self, key_hash: str, prefix: str | None) -> Principal | None:
        with self.db.read() as conn:
            found = key_repo.key_by_prefix(conn, prefix) if prefix else key_repo.key_by_hash(conn, key_hash)
        if found is None:
            return None
        key, stored = found
        if not hmac.compare_digest(stored, key_hash) or not key.active(self.clock.now()):
            return None
        return Principal(f"key:{key.name}", frozenset(key.scopes), key.models, key_hash, key.expires_at, key.rate)

    # -- rates -------------------------------------------------------------------------------

    async def admit(self, principal: Principal, address: str) -> Decision | None:
        """Take one request from the principal's bucket (everyone's, by address, on an open
        server); None when no rate applies. Refused: ``RateLimitedError``."""
        rate = principal.rate or self.default_rate
        if rate is None:
            return None
        decision = await self.buckets.take(f"addr:{address}" if principal is OPEN else principal.name, rate)
        if not decision.allowed:
            raise RateLimitedError(
                f"{principal.name if principal is not OPEN else 'this address'} is over its rate of {rate}; "
                f"retry after {max(1, math.ceil(decision.retry_after))} s",
                decision,
            )
        return decision

    async def admit_subjects(self, model: str, subjects: Iterable[str | None]) -> None:
        """Take one request per feedback event of each subject from its bucket (per model)."""
        rate = self.subject_rate
        if rate is None:
            return
        for subject, count in Counter(s for s in subjects if isinstance(s, str) and s).items():
            name = f"subject:{model}:{keys.secret_hash(subject)[:32]}"  # no user id kept in Redis
            decision = await self.buckets.take(name, rate, count)
            if not decision.allowed:
                raise RateLimitedError(
                    f"subject {subject[:64]!r} is over its feedback rate of {rate} on model {model!r}", decision
                )

    # -- keys --------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        scopes: Sequence[Scope],
        *,
        models: Sequence[str] = (),
        expires_in: timedelta | None = None,
        rate: Rate | None = None,
        actor: str,
    ) -> tuple[ApiKey, str]:
        """A new key and its secret, which is never shown again (only its hash is kept)."""
        keys.check_name(name)
        if not scopes:
            raise ValidationError("a key needs at least one scope", field="scopes")
        secret, prefix = keys.new_key()
        now = self.clock.now()
        with self.db.write() as conn:
            if key_repo.unrevoked_key_named(conn, name) is not None:
                raise ConflictError(f"a key named {name!r} exists already; revoke it first", field="name")
            key = key_repo.insert_key(
                conn,
                name=name,
                prefix=prefix,
                secret_hash=keys.secret_hash(secret),
                scopes=sorted(set(scopes), key=list(Scope).index),
                models=sorted(set(models)),
                expires_at=now + expires_in if expires_in else None,
                created_by=actor,
                at=now,
                rate=rate,
            )
            _key_event(conn, "key_created", key, actor, now)
        self._required = True
        log.info("key %s (%s) created by %s: %s", key.name, key.prefix, actor, ", ".join(key.scopes))
        return key, secret

    def list_keys(self, *, include_revoked: bool = False) -> list[ApiKey]:
        with self.db.read() as conn:
            return key_repo.list_keys(conn, include_revoked=include_revoked)

    def revoke(self, name: str, *, actor: str) -> ApiKey:
        """Revoke the key of this name: it stops working, here at once, and its sessions end."""
        now = self.clock.now()
        with self.db.write() as conn:
            key = key_repo.unrevoked_key_named(conn, name)
            if key is None:
                raise NotFoundError(f"no key named {name!r} (or revoked already)", field="name")
            key_repo.revoke_key(conn, key.id, now)
            _key_event(conn, "key_revoked", key, actor, now)
        key = replace(key, revoked_at=now)
        with self._lock:
            self._cache = {h: entry for h, entry in self._cache.items() if entry[1].name != f"key:{key.name}"}
        log.info("key %s (%s) revoked by %s", key.name, key.prefix, actor)
        return key

    # -- dashboard sessions ------------------------------------------------------------------

    def open_session(self, principal: Principal) -> str:
        """A random session token for this principal's key (the cookie's value)."""
        if principal.key_hash is None:
            raise ValidationError("only a key opens a session")
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        expires = now + timedelta(seconds=self.settings.session_seconds)
        if principal.expires_at is not None:
            expires = min(expires, principal.expires_at)
        with self.db.write() as conn:
            key_repo.insert_session(
                conn, token_hash=keys.secret_hash(token), key_hash=principal.key_hash, at=now, expires_at=expires
            )
        return token

    def session(self, token: str) -> Principal | None:
        with self.db.read() as conn:
            key_hash = key_repo.session_key_hash(conn, keys.secret_hash(token), self.clock.now())
        return None if key_hash is None else self.principal_for_hash(key_hash)

    def close_session(self, token: str) -> None:
        with self.db.write() as conn:
            key_repo.delete_session(conn, keys.secret_hash(token))


def _key_event(conn: Connection, kind: str, key: ApiKey, actor: str, at: datetime) -> None:
    """A key's creation or revocation in the server's trail: its name and public prefix, never
    its secret or hash."""
    data: dict[str, object] = {"name": key.name, "prefix": key.prefix, "scopes": [str(s) for s in key.scopes]}
    if key.models:
        data["models"] = list(key.models)
    event_repo.insert_event(
        conn, model=SERVER_TRAIL, kind=kind, at=at, actor=actor, reason=f"key {key.name} ({key.prefix})", data=data
    )
