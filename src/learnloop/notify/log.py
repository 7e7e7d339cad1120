"""The log notifier: every event to the ``learnloop.events`` logger, with structured fields."""

from __future__ import annotations

import logging

from learnloop.domain import Event
from learnloop.notify.base import DeliveryOutcome
from learnloop.notify.payloads import link, summary

EVENTS_LOGGER = "learnloop.events"
# Kinds a person should look at: logged as warnings, the rest as info.
WARNING_KINDS = frozenset({"rolled_back", "drift_detected", "accuracy_dropped", "rating_dropped", "auth_failure_burst"})


class LogNotifier:
    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(EVENTS_LOGGER)

    def send(self, event: Event) -> DeliveryOutcome:
        level = logging.WARNING if event.kind in WARNING_KINDS or event.kind.endswith("_failed") else logging.INFO
        self.logger.log(
            level,
            "%s",
            summary(event),
            extra={
                "event_id": event.id,
                "event_kind": event.kind,
                "model": event.model,
                "version": event.version,
                "actor": event.actor,
                "reason": event.reason,
                "link": link(event),
            },
        )
        return DeliveryOutcome.ok()
