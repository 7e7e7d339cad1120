"""The ``Notifier`` protocol, what a delivery attempt comes to, and the stored webhook and
delivery records.

A notifier is anything with ``send(event) -> DeliveryOutcome``: the log notifier, a webhook
(``WebhookNotifier``), or, in tests, a plain function wrapped by ``FunctionNotifier``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol

from learnloop.domain import Event

# What a webhook receives when it names no kinds: the decisions a person may want to hear of.
DEFAULT_KINDS: tuple[str, ...] = (
    "candidate_rejected",
    "promoted",
    "rolled_back",
    "rollout_started",
    "drift_detected",
    "accuracy_dropped",
    "retrain_failed",
)
ALL_KINDS = "*"  # a webhook with kinds ["*"] receives every event
KIND_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]{0,31})$")
FORMATS = ("json", "slack")
Format = Literal["json", "slack"]


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # a transient failure: try again later
    FAILED = "failed"  # a permanent failure: do not try again


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one attempt came to: the receiver's status code (if it answered), the error, and
    for a retry how long the receiver asked us to wait (``Retry-After``, seconds)."""

    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.outcome == Outcome.DELIVERED

    @classmethod
    def ok(cls, status_code: int | None = None) -> DeliveryOutcome:
        return cls(Outcome.DELIVERED, status_code)


class Notifier(Protocol):
    """Sends one event somewhere; never raises for a failed delivery, says so instead."""

    def send(self, event: Event) -> DeliveryOutcome: ...


class FunctionNotifier:
    """A plain function as a notifier (``None`` returned counts as delivered)."""

    def __init__(self, fn: Callable[[Event], DeliveryOutcome | None]) -> None:
        self.fn = fn

    def send(self, event: Event) -> DeliveryOutcome:
        return self.fn(event) or DeliveryOutcome.ok()


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class Webhook:
    id: int
    url: str
    model: str | None  # None: every model
    kinds: tuple[str, ...]  # () means DEFAULT_KINDS
    format: Format
    active: bool
    created_at: datetime
    secret: str  # never leaves the service except once, on creation

    @property
    def effective_kinds(self) -> tuple[str, ...]:
        return self.kinds or DEFAULT_KINDS

    def wants(self, event: Event) -> bool:
        """Whether this webhook receives ``event`` (model and kinds filters)."""
        if not self.active or (self.model is not None and event.model != self.model):
            return False
        return kind_matches(event.kind, self.effective_kinds)


def kind_matches(kind: str, kinds: Sequence[str]) -> bool:
    """``*`` matches every kind; the default set also takes any job failure (``*_failed``)."""
    if ALL_KINDS in kinds or kind in kinds:
        return True
    return tuple(kinds) == DEFAULT_KINDS and kind.endswith("_failed")


@dataclass(frozen=True)
class Delivery:
    id: int
    webhook_id: int
    event_id: int
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    event_kind: str | None = None
    event_model: str | None = None
