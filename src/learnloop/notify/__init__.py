"""Notifications: every event to the log, and the ones a webhook asks for to its URL (signed,
retried, each delivery recorded). ``NotificationService`` lives in ``learnloop.notify.service``
(it needs the store). The webhook and delivery records are the domain's, named here too."""

from learnloop.domain import ALL_KINDS, DEFAULT_KINDS, Delivery, DeliveryStatus, Webhook
from learnloop.notify.base import DeliveryOutcome, FunctionNotifier, Notifier, Outcome
from learnloop.notify.log import LogNotifier
from learnloop.notify.payloads import json_body, slack_body, summary
from learnloop.notify.webhook import WebhookNotifier, sign, verify_signature
from learnloop.retry import RetryPolicy

__all__ = [
    "ALL_KINDS",
    "DEFAULT_KINDS",
    "Delivery",
    "DeliveryOutcome",
    "DeliveryStatus",
    "FunctionNotifier",
    "LogNotifier",
    "Notifier",
    "Outcome",
    "RetryPolicy",
    "Webhook",
    "WebhookNotifier",
    "json_body",
    "sign",
    "slack_body",
    "summary",
    "verify_signature",
]
