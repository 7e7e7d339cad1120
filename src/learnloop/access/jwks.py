"""``RemoteJwks``: the signing keys of an identity provider, fetched from its JWKS URL (through
PyJWT's ``PyJWKClient``, with a timeout) and kept here.

* **When it fetches.** Never at import or start-up: the first token that needs a key fetches
  the set, off the event loop (a worker thread). The set is fetched again when it is older
  than ``cache_seconds`` or a token names a ``kid`` it lacks (the provider rotated its keys),
  but never more often than once per ``refetch_seconds``, so tokens with made-up kids cannot
  turn the server into a flood against the provider. One fetch at a time.
* **When the provider is down.** Keys fetched once keep working (a failed refresh keeps them,
  and is logged once a minute); a server that never had a key answers ``AuthUnavailableError``
  (503 ``auth_unavailable`` with Retry-After): the token may be good, so not 401, and a
  failure is not counted against the client's address.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from learnloop.errors import OverloadedError

log = logging.getLogger(__name__)

Key = tuple[str, Any]  # (algorithm, key)


class AuthUnavailableError(OverloadedError):
    """No signing key could be fetched yet from the JWKS URL: 503 with Retry-After."""

    code = "auth_unavailable"


class RemoteJwks:
    def __init__(
        self,
        jwt: Any,
        url: str,
        read_keys: Any,
        *,
        cache_seconds: float,
        refetch_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self.client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=timeout_seconds,
                                      headers={"User-Agent": "learnloop"})  # fmt: skip
        self._jwt = jwt
        self._read_keys = read_keys  # a PyJWKSet -> {kid: (algorithm, key)}; raises when it holds none
        self.cache_seconds = cache_seconds
        self.refetch_seconds = refetch_seconds
        self.fetches = 0  # requests sent to the URL (for tests)
        self._keys: dict[str | None, Key] = {}
        self._fetched_at: float | None = None  # time.monotonic() of the last good fetch
        self._tried_at: float | None = None  # ... of the last try
        self._generation = 0  # good fetches so far
        self._lock = threading.Lock()
        self._warned = 0.0

    async def key(self, kid: str | None) -> Key | None:
        """The key of this kid (None: unknown to the provider), fetching the set when it is
        stale or lacks the kid. ``AuthUnavailableError`` while no key was ever fetched."""
        found = self._find(kid)
        stale = self._fetched_at is None or time.monotonic() - self._fetched_at >= self.cache_seconds
        if (found is None or stale) and self._may_try():
            await asyncio.to_thread(self._refresh, self._generation)
            found = self._find(kid)
        if not self._keys:
            wait = self.refetch_seconds - (time.monotonic() - (self._tried_at or 0.0))
            raise AuthUnavailableError(
                "the identity provider's signing keys (JWKS) could not be fetched; retry shortly",
                retry_after=max(1.0, wait),
            )
        return found

    def _find(self, kid: str | None) -> Key | None:
        keys = self._keys
        return keys[None] if None in keys else keys.get(kid)

    def _may_try(self) -> bool:
        return self._tried_at is None or time.monotonic() - self._tried_at >= self.refetch_seconds

    def _refresh(self, generation: int) -> None:
        """Fetch the set (in a worker thread), unless another request did since ``generation``
        was read or the last try is too recent."""
        with self._lock:
            if self._generation != generation or not self._may_try():
                return
            self._tried_at = time.monotonic()
            self.fetches += 1
            try:
                keys = self._read_keys(self._jwt.PyJWKSet.from_dict(self.client.fetch_data()))
            except Exception as exc:  # down, slow, not a JWKS: keep what we have
                now = time.monotonic()
                if now - self._warned >= 60:
                    self._warned = now
                    held = f"keeping the {len(self._keys)} keys fetched before" if self._keys else "no key yet"
                    log.warning("JWT: the JWKS URL could not be read (%s); %s", type(exc).__name__, held)
                return
            self._keys, self._fetched_at = keys, self._tried_at
            self._generation += 1
