"""CORS for browser clients: pages of the configured origins (``serve --cors-origin``) may call
the API; with none configured (the default) no CORS header is ever sent.

Starlette's ``CORSMiddleware`` does the work, inside the Host check (a preflight naming another
host is refused like any request) and outside everything else: a preflight (``OPTIONS`` with
``Access-Control-Request-Method``) is answered before routing, so it needs no key and is never
a 401, and the edge guard's refusals carry the headers too. Credentials (cookies) are not
allowed: browser clients send a key in ``X-API-Key`` or ``Authorization``, and the dashboard's
cookie login and same-origin checks are not opened to other sites. The rate-limit headers and
``Retry-After`` are exposed, so a page can back off. A preflight that asks for what is not
allowed (another origin, method or header) is 400 ``cors_refused``.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from learnloop.api.errors import problem

ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ALLOWED_HEADERS = ("Authorization", "X-API-Key", "Content-Type", "Accept")
EXPOSED_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After")
MAX_AGE_SECONDS = 600  # how long a browser may reuse a preflight's answer


class Cors(CORSMiddleware):
    """Starlette's, with a refused preflight (an origin, method or header not allowed) answered
    400 ``cors_refused`` in problem+json like every other refusal, not in plain text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        if answer.status_code != 400:
            return answer
        what = bytes(answer.body).decode().removeprefix("Disallowed CORS ")  # "origin, headers"
        refused = problem(400, "cors_refused", f"the preflight's {what} not allowed by this server (--cors-origin)")
        refused.headers.update({k: v for k, v in answer.headers.items() if k.startswith("access-control-")})
        return refused


def add_cors(app: FastAPI, origins: Sequence[str]) -> None:
    if not origins:
        return
    app.add_middleware(
        Cors,
        allow_origins=list(origins),
        allow_methods=list(ALLOWED_METHODS),
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        allow_credentials=False,
        max_age=MAX_AGE_SECONDS,
    )
