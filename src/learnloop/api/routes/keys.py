"""Scoped API keys: create (the key is answered once), list, revoke (admin routes)."""

from __future__ import annotations

from fastapi import APIRouter

from learnloop.access import parse_duration
from learnloop.api.deps import AdminDep, ServicesDep
from learnloop.api.key_schemas import KeyCreate, KeyCreated, KeyPublic
from learnloop.api.openapi import problems
from learnloop.domain import parse_rate

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.post("", response_model=KeyCreated, status_code=201, operation_id="create_key", responses=problems(409))
async def create(body: KeyCreate, actor: AdminDep, services: ServicesDep) -> KeyCreated:
    """Create a key with these scopes (and models); the answer carries the key, shown only
    this once."""
    expires_in = parse_duration(body.expires) if body.expires else None
    rate = parse_rate(body.rate) if body.rate else None
    key, secret = services.access.create(
        body.name, body.scopes, models=body.models, expires_in=expires_in, rate=rate, actor=actor.name
    )
    return KeyCreated(**KeyPublic.of(key).model_dump(), key=secret)


@router.get("", response_model=list[KeyPublic], operation_id="list_keys")
async def list_keys(_: AdminDep, services: ServicesDep, revoked: bool = False) -> list[KeyPublic]:
    """The keys (never their secrets); ``revoked=true`` lists the revoked ones too."""
    return [KeyPublic.of(k) for k in services.access.list_keys(include_revoked=revoked)]


@router.delete("/{name}", response_model=KeyPublic, operation_id="revoke_key", responses=problems(404))
async def revoke(name: str, actor: AdminDep, services: ServicesDep) -> KeyPublic:
    """Revoke a key by its name: it stops working (on other replicas within seconds) and its
    dashboard sessions end."""
    return KeyPublic.of(services.access.revoke(name, actor=actor.name))
