"""``NotificationService``: follows the event log, turns each event into one delivery per
webhook that wants it, and sends the deliveries that are due.

How it stays correct with several workers on one database:

* **Fan-out** (``collect``): one write transaction locks the ``cursors`` row "webhooks"
  (``FOR UPDATE``; SQLite's write transaction is exclusive anyway), reads the events after it,
  inserts the deliveries (the unique (webhook, event) pair makes a second insert a no-op) and
  moves the cursor, so an event fans out exactly once.
* **Sending** (``deliver_due``): a delivery is claimed by moving its ``next_attempt_at`` to a
  lease in the future in one conditional UPDATE (with ``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL), then sent outside any transaction, then its outcome recorded. Two workers never
  claim the same attempt; a worker that dies mid-send leaves the delivery due again when its
  lease ends (at-least-once: receivers deduplicate on ``X-Learnloop-Delivery``).
* **Ids committed out of order** (PostgreSQL sequences): an event id can become visible after
  a higher one. Events past a gap are fanned out at once, but the cursor stops before the gap
  until the gap is ``gap_grace_seconds`` old (a rolled-back transaction leaves a gap for ever).
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from learnloop.clock import Clock
from learnloop.domain import Delivery, DeliveryStatus, Event, Webhook
from learnloop.errors import ValidationError
from learnloop.notify.base import FORMATS, KIND_PATTERN, DeliveryOutcome, Notifier, Outcome, masked_url
from learnloop.notify.log import LogNotifier
from learnloop.notify.webhook import WebhookNotifier, timeout
from learnloop.retry import RetryPolicy
from learnloop.store.db import Database
from learnloop.store.repositories import events as event_repo
from learnloop.store.repositories import models as model_repo
from learnloop.store.repositories import webhooks as webhook_repo
from learnloop.telemetry import Metrics

if TYPE_CHECKING:  # imported when a webhook is sent
    import httpx

log = logging.getLogger(__name__)

CURSOR = "webhooks"
MAX_URL_CHARS = 2000
SECRET_CHARS = (16, 256)


def default_client() -> httpx.Client:
    import httpx

    return httpx.Client(timeout=timeout(), follow_redirects=False)


@dataclass
class DispatchResult:
    events: int = 0  # events read past the cursor
    created: int = 0  # deliveries created
    attempts: list[DeliveryOutcome] = field(default_factory=list)


def next_cursor(cursor: int, events: Sequence[Event], now_ts: float, grace: float) -> int:
    """How far the cursor may move over ``events`` (sorted by id): up to the first gap in the
    ids whose next event is younger than ``grace`` seconds."""
    for e in events:
        if e.id != cursor + 1 and (e.created_at is None or now_ts - e.created_at.timestamp() < grace):
            break
        cursor = e.id
    return cursor


class NotificationService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        metrics: Metrics,
        client_factory: Callable[[], httpx.Client] = default_client,
        *,
        notifiers: Sequence[Notifier] | None = None,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        lease_seconds: float = 60.0,
        batch: int = 500,
        send_budget_seconds: float = 5.0,
        gap_grace_seconds: float = 30.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.metrics = metrics
        self.notifiers: list[Notifier] = list(notifiers) if notifiers is not None else [LogNotifier()]
        self.retry = retry or RetryPolicy()
        self.rng = rng or random.Random()
        self.lease = timedelta(seconds=lease_seconds)
        self.batch = batch
        self.send_budget = send_budget_seconds
        self.gap_grace = gap_grace_seconds
        self._client_factory = client_factory
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    # -- webhooks -----------------------------------------------------------------------------
    def add_webhook(
        self,
        url: str,
        *,
        model: str | None = None,
        kinds: Sequence[str] = (),
        format: str = "json",
        secret: str | None = None,
    ) -> Webhook:
        """Register a webhook. The returned webhook carries its secret: show it once."""
        url = _check_url(url)
        kinds = _check_kinds(kinds)
        if format not in FORMATS:
            raise ValidationError(f"format must be one of {', '.join(FORMATS)}, not {format!r}", field="format")
        if secret is not None and not SECRET_CHARS[0] <= len(secret) <= SECRET_CHARS[1]:
            raise ValidationError(
                f"a secret must have {SECRET_CHARS[0]} to {SECRET_CHARS[1]} characters (or leave it out)",
                field="secret",
            )
        now = self.clock.now()
        with self.db.write() as conn:
            if model is not None:
                model_repo.get_model(conn, model)  # NotFoundError for an unknown model
            webhook_repo.init_cursor(conn, CURSOR, event_repo.max_event_id(conn), now)  # from now on, not the past
            hook = webhook_repo.insert_webhook(
                conn,
                url=url,
                model=model,
                kinds=kinds,
                format=format,
                secret=secret or secrets.token_urlsafe(32),
                at=now,
            )
        shown, kinds_shown = masked_url(url), ",".join(kinds) or "default"
        log.info("webhook %s added: %s (model %s, kinds %s)", hook.id, shown, model or "*", kinds_shown)
        return hook

    def list_webhooks(self) -> list[Webhook]:
        with self.db.read() as conn:
            return webhook_repo.list_webhooks(conn)

    def get_webhook(self, webhook_id: int) -> Webhook:
        with self.db.read() as conn:
            return webhook_repo.get_webhook(conn, webhook_id)

    def remove_webhook(self, webhook_id: int) -> None:
        """Stop delivering to a webhook; its history stays, its pending deliveries fail."""
        with self.db.write() as conn:
            dropped = webhook_repo.deactivate_webhook(conn, webhook_id, self.clock.now())
        log.info("webhook %s removed (%s pending deliveries dropped)", webhook_id, dropped)

    def deliveries(self, webhook_id: int, limit: int = 50, status: DeliveryStatus | None = None) -> list[Delivery]:
        with self.db.read() as conn:
            webhook_repo.get_webhook(conn, webhook_id, active_only=False)
            return webhook_repo.list_deliveries(conn, webhook_id, limit, status)

    def pending(self) -> int:
        with self.db.read() as conn:
            return webhook_repo.count_pending_deliveries(conn)

    def send_test(self, webhook_id: int, *, actor: str = "learnloop") -> DeliveryOutcome:
        """Send a ``webhook_test`` event now, once, and say how it went (nothing is stored)."""
        hook = self.get_webhook(webhook_id)
        event = Event(
            id=0,
            model=hook.model or "*",
            kind="webhook_test",
            version=None,
            actor=actor,
            reason="a test notification from learnloop",
            data={"webhook_id": hook.id},
            created_at=self.clock.now(),
        )
        delivery_id = f"test-{secrets.token_hex(8)}"
        outcome = self._notifier(hook, delivery_id).send(event)
        log.info("webhook %s test: %s %s", hook.id, outcome.outcome.value, outcome.status_code or outcome.error)
        return outcome

    # -- the periodic work ----------------------------------------------------------------------
    def dispatch(self) -> DispatchResult:
        """Fan new events out into deliveries, then send what is due (the worker's "notify")."""
        result = self.collect()
        result.attempts = self.deliver_due()
        self.refresh_gauge()
        return result

    def collect(self) -> DispatchResult:
        now = self.clock.now()
        with self.db.read() as conn:  # idle (the usual case): no write lock taken
            seen = webhook_repo.get_cursor(conn, CURSOR)
            if seen is not None and event_repo.max_event_id(conn) <= seen:
                return DispatchResult()
        with self.db.write() as conn:
            cursor = webhook_repo.get_cursor(conn, CURSOR, for_update=True)
            if cursor is None:  # the first run: start from now, not from the whole history
                webhook_repo.init_cursor(conn, CURSOR, event_repo.max_event_id(conn), now)
                return DispatchResult()
            events = event_repo.list_all_events(conn, cursor, self.batch)
            if not events:
                return DispatchResult()
            hooks = webhook_repo.list_webhooks(conn)
            pairs = [(h.id, e.id) for e in events for h in hooks if h.wants(e)]
            created = webhook_repo.insert_deliveries(conn, pairs, now)
            moved = next_cursor(cursor, events, now.timestamp(), self.gap_grace)
            if moved != cursor:
                webhook_repo.set_cursor(conn, CURSOR, moved, now)
        for event in events:
            if event.id <= moved:  # each event reaches the in-process notifiers once
                self._notify_local(event)
        return DispatchResult(events=len(events), created=created)

    def deliver_due(self, limit: int | None = None) -> list[DeliveryOutcome]:
        """Send due deliveries one by one for up to ``send_budget_seconds`` (the worker loop
        is not held longer than that plus one request's timeout)."""
        outcomes: list[DeliveryOutcome] = []
        with self.db.read() as conn:
            if not webhook_repo.has_due_delivery(conn, self.clock.now()):
                return outcomes
        deadline = time.monotonic() + self.send_budget
        while (limit is None or len(outcomes) < limit) and time.monotonic() < deadline:
            outcome = self.deliver_one()
            if outcome is None:
                break
            outcomes.append(outcome)
        return outcomes

    def deliver_one(self) -> DeliveryOutcome | None:
        with self.db.write() as conn:
            now = self.clock.now()
            delivery = webhook_repo.claim_delivery(conn, now, now + self.lease)
            if delivery is None:
                return None
            hook = webhook_repo.get_webhook(conn, delivery.webhook_id, active_only=False)
            event = event_repo.get_event(conn, delivery.event_id)
        if event is None:
            outcome = DeliveryOutcome(Outcome.FAILED, None, f"event {delivery.event_id} not found")
        else:
            outcome = self._notifier(hook, str(delivery.id)).send(event)
        self._record(delivery, outcome)
        return outcome

    def refresh_gauge(self) -> None:
        self.metrics.webhook_pending.set(self.pending())

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- inside ---------------------------------------------------------------------------------
    def _client_now(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    def _notifier(self, hook: Webhook, delivery_id: str) -> WebhookNotifier:
        return WebhookNotifier(
            hook.url,
            hook.secret,
            client=self._client_now(),
            clock=self.clock,
            format=hook.format,
            delivery_id=delivery_id,
        )

    def _notify_local(self, event: Event) -> None:
        for notifier in self.notifiers:
            try:
                notifier.send(event)
            except Exception:
                log.exception("notifier %s failed on event %s", type(notifier).__name__, event.id)

    def _record(self, delivery: Delivery, outcome: DeliveryOutcome) -> None:
        now = self.clock.now()
        status, next_at, delivered_at, error = DeliveryStatus.FAILED, None, None, outcome.error
        label = outcome.outcome.value
        if outcome.outcome == Outcome.DELIVERED:
            status, delivered_at = DeliveryStatus.DELIVERED, now
        elif outcome.outcome == Outcome.RETRY:
            wait = self.retry.delay(delivery.attempts, self.rng, outcome.retry_after)
            if wait is None:
                error, label = f"{outcome.error} (gave up after {delivery.attempts} attempts)", "failed"
            else:
                status, next_at = DeliveryStatus.PENDING, now + timedelta(seconds=wait)
        with self.db.write() as conn:
            webhook_repo.record_delivery_attempt(
                conn,
                delivery.id,
                status=status,
                status_code=outcome.status_code,
                error=error,
                next_attempt_at=next_at,
                delivered_at=delivered_at,
            )
        self.metrics.webhook_deliveries.labels(label).inc()
        level = logging.INFO if label == "delivered" else logging.WARNING
        log.log(
            level,
            "delivery %s of event %s to webhook %s: %s (attempt %s, %s)",
            delivery.id,
            delivery.event_id,
            delivery.webhook_id,
            label,
            delivery.attempts,
            outcome.status_code or outcome.error,
            extra={"delivery_id": delivery.id, "webhook_id": delivery.webhook_id, "event_id": delivery.event_id},
        )


def _check_url(url: str) -> str:
    url = url.strip()
    if not url or len(url) > MAX_URL_CHARS or any(c.isspace() or ord(c) < 32 for c in url):
        raise ValidationError(f"url must be an http(s) URL of at most {MAX_URL_CHARS} characters", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port that is not a number
    except ValueError:
        raise ValidationError(f"url is not a valid URL: {url!r}", field="url") from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError(f"url must start with http:// or https://, not {url!r}", field="url")
    if not parts.hostname:
        raise ValidationError(f"url has no host: {url!r}", field="url")
    del port
    return url


def _check_kinds(kinds: Sequence[str]) -> list[str]:
    out: list[str] = []
    for kind in kinds:
        kind = kind.strip()
        if not KIND_PATTERN.match(kind):
            raise ValidationError(
                f"event kind {kind!r} is not a kind name (lowercase letters, digits and _; or * for all)",
                field="kinds",
            )
        if kind not in out:
            out.append(kind)
    return out
