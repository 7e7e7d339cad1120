"""The ``Notifier`` protocol and what a delivery attempt comes to. The stored webhook and
delivery records are the domain's (``learnloop.domain``): the store reads and writes them.

A notifier is anything with ``send(event) -> DeliveryOutcome``: the log notifier, a webhook
(``WebhookNotifier``), or, in tests, a plain function wrapped by ``FunctionNotifier``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlsplit

from learnloop.domain import Event

KIND_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]{0,31})$")
FORMATS = ("json", "slack")


def masked_url(url: str) -> str:
    """A webhook's URL with its scheme and host only (``https://hooks.slack.com/...``): a
    Slack-style URL carries its credential in the path (``/services/T.../B.../token``), so logs,
    listings and the CLI show this; only the answer that registers a webhook shows it whole."""
    parts = urlsplit(url)
    hidden = "/..." if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{hidden}"


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
