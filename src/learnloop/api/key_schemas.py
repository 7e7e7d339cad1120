"""Request and response schemas of the key routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from learnloop.domain import ApiKey, Scope


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description="Its name (events name it as the actor: key:NAME); unique among keys not revoked.",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    )
    scopes: list[Scope] = Field(min_length=1, max_length=5, description="What it may do (admin: everything).")
    models: list[str] = Field(
        default_factory=list, max_length=100, description="Only these models (default: every model)."
    )
    expires: str | None = Field(
        default=None, max_length=16, description="It stops working after this long: 90d, 12h, 30m, 3600s."
    )
    rate: str | None = Field(
        default=None,
        max_length=24,
        description="Its request rate: 200/s, 6000/m, 50/10s (default: the server's --rate-limit).",
    )


class KeyPublic(BaseModel):
    name: str
    prefix: str = Field(description="The key's public start, to recognise it; the rest is never shown again.")
    scopes: list[Scope]
    models: list[str] = Field(description="[] means every model.")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    created_by: str
    rate: str | None = Field(default=None, description="Its own request rate (null: the server's default).")

    @classmethod
    def of(cls, key: ApiKey) -> KeyPublic:
        return cls(
            name=key.name,
            prefix=key.prefix,
            scopes=list(key.scopes),
            models=list(key.models),
            created_at=key.created_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            created_by=key.created_by,
            rate=str(key.rate) if key.rate else None,
        )


class KeyCreated(KeyPublic):
    key: str = Field(description="The key itself, shown this once: only its hash is stored.")
