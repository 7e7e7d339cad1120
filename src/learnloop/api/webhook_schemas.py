"""Request and response schemas of the webhook routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from learnloop.domain import DEFAULT_KINDS, Delivery, Webhook
from learnloop.notify.base import DeliveryOutcome, masked_url


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="http:// or https:// URL that receives a POST per event.", max_length=2000)
    model: str | None = Field(default=None, description="Only this model's events (default: every model).")
    kinds: list[str] = Field(
        default_factory=list,
        description=f"Event kinds to send; [] means the default set ({', '.join(DEFAULT_KINDS)}, any *_failed); "
        "['*'] means every event.",
    )
    format: Literal["json", "slack"] = Field(default="json", description="json, or a Slack-compatible body.")
    secret: str | None = Field(default=None, description="HMAC key of the signature (default: generated).")


class WebhookPublic(BaseModel):
    id: int
    url: str = Field(
        description="Scheme and host only (https://hooks.slack.com/...): a Slack-style URL carries its credential "
        "in the path, shown whole only in the answer that registers it."
    )
    model: str | None
    kinds: list[str]
    format: str
    created_at: datetime

    @classmethod
    def of(cls, w: Webhook) -> WebhookPublic:
        return cls(id=w.id, url=masked_url(w.url), model=w.model, kinds=list(w.effective_kinds), format=w.format,
                   created_at=w.created_at)  # fmt: skip


class WebhookCreated(WebhookPublic):
    """The registration's answer: the URL whole and the secret, this once."""

    secret: str = Field(description="Shown this once: keep it to verify X-Learnloop-Signature.")

    @classmethod
    def with_secret(cls, w: Webhook) -> WebhookCreated:
        return cls(**{**WebhookPublic.of(w).model_dump(), "url": w.url}, secret=w.secret)


class DeliveryPublic(BaseModel):
    id: int
    webhook_id: int
    event_id: int
    event_kind: str | None
    model: str | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, d: Delivery) -> DeliveryPublic:
        return cls(
            id=d.id,
            webhook_id=d.webhook_id,
            event_id=d.event_id,
            event_kind=d.event_kind,
            model=d.event_model,
            status=d.status.value,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status.value == "pending" else None,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
        )


class WebhookTestResult(BaseModel):
    delivered: bool
    outcome: str
    status_code: int | None
    error: str | None

    @classmethod
    def of(cls, o: DeliveryOutcome) -> WebhookTestResult:
        return cls(delivered=o.delivered, outcome=o.outcome.value, status_code=o.status_code, error=o.error)
