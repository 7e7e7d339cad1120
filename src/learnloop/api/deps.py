"""Dependencies shared by the routes, and who may call each (``Need``).

Every route declares the scope it needs with one ``Need`` (the aliases below, ``ReadDep``,
``AdminDep``, ...), or is one of the few ``PUBLIC_PATHS``; ``tests/e2e/test_route_scopes.py``
walks the app's route list, so a route that declares neither fails the suite.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Security
from fastapi.routing import RouteContext, iter_route_contexts
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

from learnloop.access import OPEN, AccessService, InvalidTokenError, Principal
from learnloop.api.errors import ForbiddenError, TooManyFailuresError, UnauthorizedError
from learnloop.api.schemas import DB_INT_MAX, DB_INT_MIN
from learnloop.domain import Scope
from learnloop.services import Services

log = logging.getLogger(__name__)


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


# A key, sent either way; the OpenAPI document declares both (/docs' Authorize button).
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="An API key: a scoped key (learnloop keys create) or the admin key (LEARNLOOP_API_KEY).",
    auto_error=False,
)
BEARER = HTTPBearer(
    scheme_name="Bearer",
    description="The same key, as `Authorization: Bearer KEY`, or a JWT when the server accepts them (--jwt-issuer).",
    auto_error=False,
)
SESSION_COOKIE = "learnloop_session"  # the dashboard's (path /dashboard, HttpOnly, SameSite=Strict)
# Routes anyone may call, keys or not: the liveness and readiness probes, the API's own
# documentation (so that /docs can load and be given a key), and the dashboard's way in.
PUBLIC_PATHS = frozenset(
    {
        "/health",
        "/ready",
        "/docs",
        "/redoc",
        "/docs/assets",
        "/openapi.json",
        "/",
        "/dashboard/login",
        "/dashboard/logout",
    }
)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def route_of(request: Request) -> str:
    """The route's template (``/v1/models/{model}/promote``): what audit events name, bounded
    whatever path a client sends."""
    return getattr(request.scope.get("route"), "path", None) or "unmatched"


async def audit_failure(
    request: Request, access: AccessService, reason: str, *, actor: str | None = None, detail: str = ""
) -> None:
    """Count a failed authentication in the audit trail (``access/audit.py`` bounds what it
    writes); the write, when one is due, runs off the event loop."""
    events = access.audit.failure(
        reason, address=client_address(request), method=request.method, route=route_of(request), actor=actor,
        detail=detail,
    )  # fmt: skip
    if events:
        await run_in_threadpool(access.audit.write, events)


class Need:
    """A route needs a credential carrying ``scope`` (admin carries every scope) when the
    server's auth is on; a key limited to some models may only name those in the path, and
    may call no admin route that names none. ``session``: the dashboard's cookie counts too."""

    def __init__(self, scope: Scope, *, session: bool = False) -> None:
        self.scope = scope
        self.session = session

    async def __call__(
        self,
        request: Request,
        x_api_key: Annotated[str | None, Security(API_KEY_HEADER)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    ) -> Principal:
        access: AccessService = request.app.state.services.access
        if not access.required():
            request.state.principal = OPEN
            if access.default_rate is not None:
                await self._admit(request, access, OPEN, client_address(request))
            return OPEN
        address = client_address(request)
        wait = access.throttle.retry_after(address)
        if wait is not None:
            await audit_failure(request, access, "throttled")
            raise TooManyFailuresError(
                f"too many failed authentications from this address; retry after {wait:.0f} s", retry_after=wait
            )
        given = x_api_key or (bearer.credentials if bearer else None)
        try:
            if x_api_key:
                principal = access.authenticate(x_api_key)
            else:
                principal = await access.authenticate_bearer(bearer.credentials) if bearer else None
        except InvalidTokenError as exc:
            access.throttle.failed(address)
            log.warning("bearer token refused (%s) from %s on %s %s", exc.code, address, request.method,
                        request.url.path)  # fmt: skip
            await audit_failure(request, access, "bad_token", detail=exc.code)
            raise
        if principal is None and given is None and self.session:
            token = request.cookies.get(SESSION_COOKIE)
            principal = access.session(token) if token else None
        if principal is None:
            if given is not None:
                access.throttle.failed(address)
                log.warning("authentication failed from %s on %s %s", address, request.method, request.url.path)
                await audit_failure(request, access, "bad_key")
            raise UnauthorizedError(
                f"this route needs a key with the {self.scope} scope (X-API-Key or Authorization: Bearer)"
            )
        model = request.path_params.get("model")
        allowed = principal.may(self.scope, model)
        if allowed and model is None and self.scope == Scope.ADMIN and not principal.every_model:
            allowed = False  # an admin route over every model: not for a key limited to some
        if not allowed:
            where = f" on model {model!r}" if model is not None and principal.may(self.scope) else ""
            await audit_failure(request, access, "forbidden", actor=principal.name, detail=f"needs {self.scope}{where}")
            raise ForbiddenError(f"key {principal.name!r} does not have the {self.scope} scope{where}")
        request.state.principal = principal
        await self._admit(request, access, principal, address)
        return principal

    @staticmethod
    async def _admit(request: Request, access: AccessService, principal: Principal, address: str) -> None:
        decision = await access.admit(principal, address)  # refused: RateLimitedError, with its headers
        if decision is not None:
            request.state.rate_limit = decision  # api/rate_headers.py sends its RateLimit-* headers


async def credential_first(request: Request) -> None:
    """Run the credential check of the route ``request`` matched, unless it has run: for a
    request refused for its shape before its dependencies ran (FastAPI parses the body first),
    so that a caller without the right key learns nothing about the route's body rules
    (``api/errors.py``). Raises as the route's ``Need`` does."""
    if hasattr(request.state, "principal"):
        return
    needs = declared_needs(request.scope.get("route"))
    if needs:
        await needs[0](request, request.headers.get(API_KEY_HEADER.model.name), await BEARER(request))


PredictDep = Annotated[Principal, Depends(Need(Scope.PREDICT))]
FeedbackDep = Annotated[Principal, Depends(Need(Scope.FEEDBACK))]
ReadDep = Annotated[Principal, Depends(Need(Scope.READ))]
LabelDep = Annotated[Principal, Depends(Need(Scope.LABEL))]
AdminDep = Annotated[Principal, Depends(Need(Scope.ADMIN))]


async def check_model(request: Request, principal: Principal, scope: Scope, model: str) -> None:
    """For a route whose model is in its body or found on the way (a job's), not its path; a
    refusal is audited like ``Need``'s."""
    if not principal.may(scope, model):
        access: AccessService = request.app.state.services.access
        await audit_failure(request, access, "forbidden", actor=principal.name, detail=f"model {model[:64]!r}")
        raise ForbiddenError(f"key {principal.name!r} may not use model {model!r}", field="model")


def declared_needs(route: Any) -> list[Need]:
    """The ``Need`` declarations of a route (an ``APIRoute`` or one of ``app_routes``), at any
    depth of its dependencies."""
    found: list[Need] = []
    stack: list[Any] = [getattr(route, "dependant", None)]
    while stack:
        dependant = stack.pop()
        if dependant is None:
            continue
        if isinstance(dependant.call, Need):
            found.append(dependant.call)
        stack.extend(dependant.dependencies)
    return found


def app_routes(routes: Sequence[BaseRoute]) -> list[RouteContext]:
    """Every route an app serves, with the routers it includes flattened (their own
    dependencies included); a mount is one route."""
    return list(iter_route_contexts(routes))


# Integers from a path or a query string, bounded to what a database column holds: a larger
# one is a 422 (it used to reach SQLite as an OverflowError, PostgreSQL as an out-of-range
# integer, and answer 500).
PathInt = Annotated[int, Path(ge=DB_INT_MIN, le=DB_INT_MAX)]
QueryInt = Annotated[int, Query(ge=DB_INT_MIN, le=DB_INT_MAX)]
OptionalQueryInt = Annotated[int | None, Query(ge=DB_INT_MIN, le=DB_INT_MAX)]
# A list's ``limit``: 1 to ``PAGE_MAX``; a negative, zero or huge one is a 422 naming the
# bound, never silently cut to it (nor handed to the database: PostgreSQL refuses LIMIT -1).
PAGE_MAX = 500
PageLimit = Annotated[int, Query(ge=1, le=PAGE_MAX, description=f"How many to return, 1-{PAGE_MAX}.")]
