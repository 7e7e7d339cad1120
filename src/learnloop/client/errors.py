"""What a client call raises, all under one base class::

    ClientError                 anything this client raises
    ├── TransportError          no answer: the server could not be reached, or timed out
    └── APIError                an answer that is not a success: the server's problem+json
                                (``status``, ``code``, ``title``, ``detail``, ``field``)

Both are raised only after the retries the client's ``RetryPolicy`` allows: an ``APIError``
with status 503 and code ``overloaded`` means the server was still refusing when they ran out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from learnloop.retry import parse_retry_after

PROBLEM_TYPE = "application/problem+json"


class ClientError(Exception):
    """The base of everything the learnloop client raises."""


class TransportError(ClientError):
    """No answer came back (connection refused or dropped, a timeout); the ``httpx`` error is
    the ``__cause__``."""


class APIError(ClientError):
    """The server answered with an error. ``code`` is the stable machine-readable reason
    (``validation_error``, ``not_found``, ``unauthorized``, ``overloaded``, ...), ``field`` the
    offending input when there is one, ``problem`` the whole problem+json body (a validation
    error lists every failure under ``problem["errors"]``).

    Example::

        try:
            client.predict("sentiment", "")
        except APIError as exc:
            assert (exc.status, exc.code, exc.field) == (422, "validation_error", "text")
    """

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        field: str | None = None,
        problem: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        where = f" (field {field})" if field else ""
        super().__init__(f"{status} {code}: {detail}{where}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.field = field
        self.problem = problem or {}
        self.retry_after = retry_after


def api_error(response: httpx.Response) -> APIError:
    """The ``APIError`` for an error answer: its problem+json body, or (from something that is
    not learnloop, a proxy's HTML page) the status and the start of the text."""
    retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
    body = _json_object(response)
    if body is not None and isinstance(body.get("code"), str):
        field = body.get("field")
        return APIError(
            response.status_code,
            body["code"],
            str(body.get("title", body["code"])),
            str(body.get("detail", "")),
            field=field if isinstance(field, str) else None,
            problem=body,
            retry_after=retry_after,
        )
    reason = response.reason_phrase or "error"
    return APIError(response.status_code, "http_error", reason, response.text[:300] or reason, retry_after=retry_after)


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith((PROBLEM_TYPE, "application/json")):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
