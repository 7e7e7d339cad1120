"""Webhooks: register, list, remove, see deliveries, send a test (admin routes)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from learnloop.api.deps import AdminDep, PageLimit, PathInt, ServicesDep
from learnloop.api.openapi import problems
from learnloop.api.webhook_schemas import (
    DeliveryPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookPublic,
    WebhookTestResult,
)
from learnloop.domain import DeliveryStatus

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.post("", response_model=WebhookCreated, status_code=201, operation_id="create_webhook", responses=problems(404))
async def create(body: WebhookCreate, _: AdminDep, services: ServicesDep) -> WebhookCreated:
    """Register a webhook; the answer carries its secret, shown only this once."""
    hook = services.notify.add_webhook(
        body.url, model=body.model, kinds=body.kinds, format=body.format, secret=body.secret
    )
    return WebhookCreated.with_secret(hook)


@router.get("", response_model=list[WebhookPublic])
async def list_webhooks(_: AdminDep, services: ServicesDep) -> list[WebhookPublic]:
    """The registered webhooks (without their secrets)."""
    return [WebhookPublic.of(w) for w in services.notify.list_webhooks()]


@router.delete("/{webhook_id}", status_code=204, operation_id="remove_webhook", responses=problems(404))
async def remove(webhook_id: PathInt, _: AdminDep, services: ServicesDep) -> Response:
    """Stop delivering to it (its delivery history stays readable)."""
    services.notify.remove_webhook(webhook_id)
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=list[DeliveryPublic],
    operation_id="list_webhook_deliveries",
    responses=problems(404),
)
async def deliveries(
    webhook_id: PathInt, _: AdminDep, services: ServicesDep, limit: PageLimit = 50, status: DeliveryStatus | None = None
) -> list[DeliveryPublic]:
    """Newest first: status, attempts, the last answer or error, the next attempt."""
    return [DeliveryPublic.of(d) for d in services.notify.deliveries(webhook_id, limit, status)]


@router.post(
    "/{webhook_id}/test", response_model=WebhookTestResult, operation_id="test_webhook", responses=problems(404)
)
def send_test(webhook_id: PathInt, actor: AdminDep, services: ServicesDep) -> WebhookTestResult:
    """Send a ``webhook_test`` event now, once (not retried, not recorded) and say how it went."""
    return WebhookTestResult.of(services.notify.send_test(webhook_id, actor=actor.name))
