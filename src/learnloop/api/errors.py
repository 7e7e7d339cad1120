"""Map domain errors and request validation failures to RFC 9457 problem+json."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def problem(status: int, code: str, detail: str, *, field: str | None = None, **extra: Any) -> JSONResponse:
    body = problem_body(status, code, detail, field=field, **extra)
    headers = problem_headers(status, extra.get("retry_after"))
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path") and not isinstance(p, int)]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
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
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": _loc(tuple(e.get("loc", ()))),
                "message": e.get("msg", ""),
                "type": e.get("type", ""),
            }
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        return problem(
            422,
            "validation_error",
            f"{first['field']}: {first['message']}",
            field=first["field"],
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail))

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
