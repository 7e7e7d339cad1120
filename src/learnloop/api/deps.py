"""Dependencies shared by the routes."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Path, Query, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from learnloop.api.errors import UnauthorizedError
from learnloop.api.schemas import INT64_MAX, INT64_MIN
from learnloop.services import Services


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


# The admin key, sent either way; the OpenAPI document declares both (/docs' Authorize button).
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="The admin API key (LEARNLOOP_API_KEY), when the server has one.",
    auto_error=False,
)
BEARER = HTTPBearer(
    scheme_name="Bearer", description="The same admin key, as `Authorization: Bearer KEY`.", auto_error=False
)


async def require_admin(
    request: Request,
    x_api_key: Annotated[str | None, Security(API_KEY_HEADER)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> str:
    """Admin routes need the API key when one is configured; returns the actor name."""
    services: Services = request.app.state.services
    expected = services.settings.api_key
    if expected is None:
        return "api"
    given = x_api_key or (bearer.credentials if bearer else None)
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise UnauthorizedError("this route needs the admin API key (X-API-Key or Authorization: Bearer)")
    return "api-key"


AdminDep = Annotated[str, Depends(require_admin)]


# Integers from a path or a query string, bounded to what a database column holds: a larger
# one is a 422 (it used to reach SQLite as an OverflowError, and answer 500).
PathInt = Annotated[int, Path(ge=INT64_MIN, le=INT64_MAX)]
QueryInt = Annotated[int, Query(ge=INT64_MIN, le=INT64_MAX)]
OptionalQueryInt = Annotated[int | None, Query(ge=INT64_MIN, le=INT64_MAX)]
