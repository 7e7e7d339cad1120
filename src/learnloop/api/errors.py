"""Map domain errors and request validation failures to RFC 9457 problem+json.

A request is judged on its credential before its shape: FastAPI parses a route's body before
it runs the route's dependencies (the ``Need`` that checks the key), so a malformed body would
be answered 422 to anyone, key or not. Every refusal of a request's shape therefore first runs
the credential check the route declares (``install(app, credential_first=...)``), and a
missing or wrong key is answered 401 / 403 as it would be with a well-formed body.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from learnloop.access import InvalidTokenError, RateLimitedError
from learnloop.api.uploads import PayloadTooLargeError, UnsupportedMediaTypeError
from learnloop.errors import (
    ArtifactError,
    ConflictError,
    DataError,
    IdempotencyConflictError,
    InsufficientDataError,
    LearnloopError,
    ModelUnavailableError,
    NotFoundError,
    OverloadedError,
    PromotionRejectedError,
    ValidationError,
)

log = logging.getLogger(__name__)

STATUS: dict[type[LearnloopError], int] = {
    ValidationError: 422,
    DataError: 422,
    InsufficientDataError: 422,
    NotFoundError: 404,
    ConflictError: 409,
    ArtifactError: 409,
    PromotionRejectedError: 409,
    OverloadedError: 503,
    ModelUnavailableError: 503,
}


class UnauthorizedError(LearnloopError):
    code = "unauthorized"


class ForbiddenError(LearnloopError):
    """The credential is good but does not carry the scope (or the model) the route needs."""

    code = "forbidden"


class TooManyFailuresError(LearnloopError):
    """Too many failed authentications from this address: refused until the window ends."""

    code = "too_many_failures"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


STATUS[UnauthorizedError] = 401
STATUS[ForbiddenError] = 403
STATUS[InvalidTokenError] = 401
STATUS[RateLimitedError] = 429
STATUS[TooManyFailuresError] = 429
STATUS[PayloadTooLargeError] = 413
STATUS[UnsupportedMediaTypeError] = 415


def status_of(exc: LearnloopError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def problem_body(status: int, code: str, detail: str, *, field: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://learnloop.dev/problems/{code}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if field is not None:
        body["field"] = field
    body.update(extra)
    return body


def problem_headers(status: int, retry_after: float | None = None) -> dict[str, str]:
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, round(retry_after)))
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return headers


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = problem_body(status, code, detail, field=field, **extra)
    sent = {**(headers or {}), **problem_headers(status, extra.get("retry_after"))}
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=sent)


# Starlette's HTTP errors by their stable code. Its 400 is FastAPI's for a body it could not
# decode (not UTF-8, a broken multipart form): answered 422 ``validation_error`` on ``body``, as
# a body that is not JSON is (one status for one fault, and the one the document lists).
HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}

CredentialCheck = Callable[[Request], Awaitable[None]]


def allowed_methods(request: Request) -> str:
    """The methods the app takes at this path, for a 405's ``Allow``: Starlette names only those
    of the first route that matched, and a path served by two routes (``GET`` and ``POST
    /v1/models``) would be answered with half of them. As OpenAPI resolves paths, the most
    concrete templates that match win: ``.../feedback/batch`` (POST) over
    ``.../feedback/{feedback_id}`` (GET, DELETE)."""
    by_params: dict[int, set[str]] = {}
    for route in iter_route_contexts(request.app.routes):  # the included routers' routes too
        match, _ = route.matches(request.scope)
        methods: set[str] | None = getattr(route, "methods", None)
        if match != Match.NONE and methods:
            params = str(getattr(route, "path_format", "")).count("{")
            by_params.setdefault(params, set()).update(methods)
    return ", ".join(sorted(by_params[min(by_params)])) if by_params else ""


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path") and not isinstance(p, int)]
    return ".".join(parts) or "body"


def install(app: FastAPI, *, credential_first: CredentialCheck | None = None) -> None:
    """``credential_first(request)`` raises the route's 401 / 403 / 429 for a request whose
    shape is refused before its key was checked (``api/deps.py``); nothing when it has been."""

    async def _refuse_shape(request: Request, answer: JSONResponse) -> JSONResponse:
        if credential_first is not None:
            try:
                await credential_first(request)
            except LearnloopError as exc:
                return await _domain(request, exc)
        return answer

    @app.exception_handler(LearnloopError)
    async def _domain(_: Request, exc: LearnloopError) -> JSONResponse:
        extra: dict[str, Any] = {}
        if isinstance(exc, OverloadedError | TooManyFailuresError | RateLimitedError):
            extra["retry_after"] = exc.retry_after
        if isinstance(exc, IdempotencyConflictError):
            extra.update(feedback_id=exc.key, existing_feedback_id=exc.existing_id)
        answer = problem(status_of(exc), exc.code, exc.message, field=exc.field, **extra)
        if isinstance(exc, RateLimitedError):
            answer.raw_headers.extend(exc.decision.headers())
        return answer

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": _loc(tuple(e.get("loc", ()))),
                "message": e.get("msg", ""),
                "type": e.get("type", ""),
            }
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        answer = problem(
            422,
            "validation_error",
            f"{first['field']}: {first['message']}",
            field=first["field"],
            errors=errors,
        )
        return await _refuse_shape(request, answer)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:
            allow = {"Allow": allowed_methods(request)}
            return problem(405, HTTP_CODES[405], f"{request.method} is not allowed here", headers=allow)
        if exc.status_code != 400:
            code = HTTP_CODES.get(exc.status_code, "http_error")
            return problem(exc.status_code, code, str(exc.detail), headers=exc.headers)
        reason = type(exc.__cause__).__name__ if exc.__cause__ else "unreadable"
        message = f"the body could not be decoded ({reason}): send UTF-8 JSON"
        error = {"field": "body", "message": message, "type": "body_undecodable"}
        answer = problem(422, "validation_error", f"body: {message}", field="body", errors=[error])
        return await _refuse_shape(request, answer)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # A read (or a credential check) that found the database out of reach: 503 and retry,
        # as a write's outage answers (feedback.write_errors), not a 500.
        if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
            log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc.orig)
            return problem(503, "storage_unavailable", "the database is unavailable; retry shortly", retry_after=2.0)
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(500, "internal_error", "an unexpected error occurred; it has been logged")
