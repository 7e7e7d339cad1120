"""``Principal``: who a request comes from (a key, the admin key, a JWT's subject, or everyone
on an open loopback server) and what it may do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from learnloop.domain import Rate, Scope


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: the name events record as its actor, what it may do."""

    name: str
    scopes: frozenset[Scope]
    models: tuple[str, ...] = ()  # () means every model
    key_hash: str | None = None  # the credential's hash (what a dashboard session refers to)
    expires_at: datetime | None = None
    rate: Rate | None = None  # the credential's own request rate (else the server's default)

    def may(self, scope: Scope, model: str | None = None) -> bool:
        if Scope.ADMIN not in self.scopes and scope not in self.scopes:
            return False
        return model is None or not self.models or model in self.models

    @property
    def every_model(self) -> bool:
        return not self.models


# Everyone, on a loopback server without keys.
OPEN = Principal("api", frozenset(Scope))
