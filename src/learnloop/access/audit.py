"""``AuditTrail``: what was done with admin power, and who failed to get in, as events.

Audit events go to the server's own trail: the events table under the model ``*``
(``SERVER_TRAIL``, the name a webhook's test event uses for "every model"), so a model's trail
keeps telling the model's story; the model an action concerned is in the event's data. Read
them with ``learnloop events --audit`` or ``GET /v1/models/*/events`` (admins). Kinds:

* ``admin_action``: every request an admin route answered (``api/audit.py`` writes it as the
  answer starts): the credential's name as actor (``key:app``, ``api-key``, ``jwt:<sub>``; never
  a secret), method, route, client address, status and outcome.
* ``key_created`` / ``key_revoked``: written with the change itself, so the CLI's are there too.
* ``auth_failure``: a wrong or expired key, a refused JWT, a scope or model refused (403), a
  wrong key at the dashboard's login. Failures come from outside and cost nothing to send, so
  they must not be able to fill the database: within each failure window (the throttle's, 60 s
  by default) only the first failure of each client address, reason and key is written, and
  at most ``audit_failure_events`` in all (20); every failure is counted in
  ``learnloop_auth_failures_total`` whether written or not. Requests the throttle refuses
  (429) are counted, never written one by one. (Not named ``*_failed``: webhooks of the default
  kinds take every job failure by that ending, and one wrong key is no alarm.)
* ``auth_failure_burst``: ``burst_threshold`` failures (50 by default, counting the throttled
  ones) within one window raise one event with the counts and the busiest addresses; a burst
  that goes on through the next windows raises no other until a window passes below the
  threshold. Webhooks carry it (it is in their default kinds).

The decisions (``failure``) are cheap and take no database; the writing (``write``) is done by
the caller off the event loop. Counts are per replica.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from learnloop.clock import Clock
from learnloop.domain import SERVER_TRAIL
from learnloop.store.db import Database
from learnloop.store.repositories import events as event_repo

log = logging.getLogger(__name__)

ANONYMOUS = "unauthenticated"  # the actor of a failure whose credential names nobody
MAX_ADDRESSES = 10_000  # addresses counted per window; beyond, counted together as "others"
TOP_ADDRESSES = 5  # how many of the busiest a burst event names
# Path values that name a person: kept as the start of their SHA-256, as the erasure event keeps
# a subject, so an erasure's audit row does not bring back the id it erased.
HASHED_PARAMS = frozenset({"subject"})


def _shown(name: str, value: str) -> str:
    if name in HASHED_PARAMS:
        return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return value[:200]


@dataclass(frozen=True)
class AuditEvent:
    """An event decided on, to be written (``AuditTrail.write``)."""

    kind: str
    actor: str
    reason: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Window:
    start: float
    failures: int = 0
    written: int = 0
    burst_raised: bool = False
    seen: set[tuple[str, str, str]] = field(default_factory=set)  # (address, reason, actor) met
    by_address: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)


class AuditTrail:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        window_seconds: float,
        burst_threshold: int,
        max_failure_events: int,
        counted: Callable[[str], None] = lambda reason: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.clock = clock
        self.window = window_seconds
        self.burst_threshold = burst_threshold
        self.max_failure_events = max_failure_events
        self.counted = counted
        self.monotonic = monotonic
        self._current: _Window | None = None
        self._previous_over = False  # the window before this one reached the burst threshold
        self._lock = threading.Lock()

    # -- deciding ------------------------------------------------------------------------------

    def action(
        self, actor: str, *, method: str, route: str, address: str, status: int, params: dict[str, str]
    ) -> AuditEvent:
        """The ``admin_action`` event of one answered admin request."""
        outcome = "succeeded" if status < 400 else "failed"
        data = {"method": method, "route": route, "address": address, "status": status, "outcome": outcome}
        if params:
            data["params"] = {k: _shown(k, v) for k, v in params.items()}
        return AuditEvent("admin_action", actor, f"{method} {route} from {address}: {status}", data)

    def failure(
        self, reason: str, *, address: str, method: str, route: str, actor: str | None = None, detail: str = ""
    ) -> list[AuditEvent]:
        """Count one authentication failure; the events it calls for (none, most of the time
        under a flood). ``reason``: ``bad_key``, ``bad_token``, ``forbidden``, ``login_failed``,
        or ``throttled`` (counted only)."""
        self.counted(reason)
        now = self.monotonic()
        with self._lock:
            window = self._roll(now)
            window.failures += 1
            key = address if address in window.by_address or len(window.by_address) < MAX_ADDRESSES else "others"
            window.by_address[key] += 1
            window.by_reason[reason] += 1
            found: list[AuditEvent] = []
            seen = (address, reason, actor or ANONYMOUS)
            first = seen not in window.seen
            if first and len(window.seen) < MAX_ADDRESSES:
                window.seen.add(seen)
            if reason != "throttled" and first and window.written < self.max_failure_events:
                window.written += 1
                data = {"reason": reason, "method": method, "route": route, "address": address, "outcome": "refused"}
                text = f"{reason} on {method} {route} from {address}" + (f": {detail[:200]}" if detail else "")
                found.append(AuditEvent("auth_failure", actor or ANONYMOUS, text, data))
            if window.failures >= self.burst_threshold and not window.burst_raised and not self._previous_over:
                window.burst_raised = True
                found.append(self._burst(window))
        return found

    def _roll(self, now: float) -> _Window:
        current = self._current
        if current is not None and now - current.start < self.window:
            return current
        # The window that just ended was over the threshold, and this one follows it at once:
        # the same burst goes on.
        follows = current is not None and now - current.start < 2 * self.window
        self._previous_over = follows and current is not None and current.failures >= self.burst_threshold
        self._current = _Window(start=now)
        return self._current

    def _burst(self, window: _Window) -> AuditEvent:
        data = {
            "failures": window.failures,
            "window_seconds": self.window,
            "addresses": len(window.by_address),
            "busiest": dict(window.by_address.most_common(TOP_ADDRESSES)),
            "reasons": dict(window.by_reason),
        }
        text = (
            f"{window.failures} failed authentications within {self.window:g} s "
            f"from {len(window.by_address)} address(es)"
        )
        log.warning("authentication failure burst: %s", text)
        return AuditEvent("auth_failure_burst", "learnloop", text, data)

    # -- writing -------------------------------------------------------------------------------

    def write(self, events: Sequence[AuditEvent]) -> None:
        """Append ``events`` to the server's trail. Blocking: call it off the event loop. A
        write that fails is logged, never raised: the answer to the request stands."""
        if not events:
            return
        try:
            at = self.clock.now()
            with self.db.write() as conn:
                for e in events:
                    event_repo.insert_event(
                        conn, model=SERVER_TRAIL, kind=e.kind, at=at, actor=e.actor, reason=e.reason, data=e.data
                    )
        except Exception:
            log.exception("audit events not written: %s", ", ".join(f"{e.kind} by {e.actor}" for e in events))
