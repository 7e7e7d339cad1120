"""The edge guard: a pure ASGI middleware (no task per request) in front of every route.

In order, for each request of a route class (``api/admission.py``; the probes pass untouched,
and a route that bounds its own body, ``OWN_BODY``, is admitted and then left to read it):

0. a NUL character in the path or the query string (``%00``): 422 ``validation_error``. No
   name, id or value holds one (intake refuses them), and PostgreSQL refuses a text parameter
   that does: a lookup by such a name would answer 500, not 404. A query parameter given
   twice: 422 too, unless some route takes that name as a list (``repeatable``, read off the
   app's routes: ``kind`` of the events); otherwise the framework would keep one value
   silently, and which one a proxy in front sees may differ;
1. a declared ``Content-Length`` beyond ``limits.max_body_bytes``: 413, nothing read;
2. admission: 503 with Retry-After when the class is at its bounds (nothing read either; a
   single-text prediction of a batching model is not refused for the loop's lag);
3. the body is read, up to the cap (413 beyond it, the rest is discarded unread), within
   ``limits.body_seconds`` (408) and within ``limits.max_body_bytes_in_flight`` for all the
   bodies held at once (503: memory stays bounded however many large bodies arrive); a client
   that disconnected meanwhile is not served: nothing is parsed, validated or stored for it;
4. a JSON body nested deeper than ``limits.max_json_depth``: 422, before any parser sees it
   (large bodies are scanned in a thread, so the event loop keeps answering);
5. the app runs, with the body replayed to it; the slot is freed when it returns.

Refusals are answered with problem+json bodies encoded once, at start-up, and counted in
``learnloop_http_refused_total`` by class and reason.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, get_args, get_origin
from urllib.parse import parse_qsl

import orjson
from starlette.routing import BaseRoute

from learnloop.api.admission import AdmissionControl, RouteClass, classify, single_prediction_model
from learnloop.api.errors import problem_body, problem_headers
from learnloop.config import Limits
from learnloop.nesting import text_too_deep
from learnloop.telemetry import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SCAN_IN_THREAD_BYTES = 64 * 1024  # bodies larger than this are scanned for depth off the event loop
# Routes that read and bound their own body (model creation: a data upload of up to
# ``limits.max_upload_bytes``, streamed to disk): admitted here, but their body is not read.
OWN_BODY = frozenset({("POST", "/v1/models")})


class Canned:
    """A problem+json response encoded once and sent as two ASGI messages."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        body = orjson.dumps(problem_body(status, code, detail, **extra))
        headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
        retry_after = extra.get("retry_after")
        headers += [(k.lower().encode(), v.encode()) for k, v in problem_headers(status, retry_after).items()]
        self.start: Message = {"type": "http.response.start", "status": status, "headers": headers}
        self.body: Message = {"type": "http.response.body", "body": body}

    async def __call__(self, send: Send) -> None:
        await send(self.start)
        await send(self.body)


class _Refused(Exception):
    def __init__(self, reason: str, response: Canned | None) -> None:
        self.reason = reason
        self.response = response  # None: the client is gone, nothing to answer


class EdgeGuard:
    def __init__(
        self,
        app: ASGIApp,
        control: AdmissionControl,
        limits: Limits,
        metrics: Metrics,
        repeatable: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.repeatable = repeatable
        self.control = control
        self.limits = limits
        self.refused = metrics.http_refused
        self.bytes_held = 0  # bodies read and not yet done with, across requests
        retry = control.bounds.retry_after_seconds
        self.overloaded = {
            (cls, reason): Canned(
                503,
                "overloaded",
                f"the server is at its bound for {cls.value} requests ({why}); retry after {retry} s",
                route_class=cls.value,
                reason=reason,
                retry_after=retry,
            )
            for cls in RouteClass
            for reason, why in (
                ("busy", "requests are waiting too long"),
                ("full", "no free slot"),
                ("memory", "request bodies held in memory"),
            )
        }
        self.too_large = Canned(
            413,
            "payload_too_large",
            f"the request body exceeds {limits.max_body_bytes} bytes",
            field="body",
            limit=limits.max_body_bytes,
        )
        self.too_deep = Canned(
            422,
            "validation_error",
            f"the JSON body is nested deeper than {limits.max_json_depth} levels",
            field="body",
            limit=limits.max_json_depth,
        )
        self.too_slow = Canned(
            408, "request_timeout", f"the request body took longer than {limits.body_seconds:g} s to arrive"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cls = classify(scope["method"], scope["path"])
        if cls is None:
            await self.app(scope, receive, send)
            return
        bad_url = _url_refusal(scope, self.repeatable)
        if bad_url is not None:
            await self._refuse(cls, bad_url, send)
            return
        own_body = (scope["method"], scope["path"]) in OWN_BODY
        if not own_body and _declared_length(scope) > self.limits.max_body_bytes:
            await self._refuse(cls, _Refused("too_large", self.too_large), send)
            return
        reason = await self.control.admit(cls, single_prediction_model(scope["method"], scope["path"]))
        if reason is not None:
            await self._refuse(cls, _Refused(reason, self.overloaded[(cls, reason)]), send)
            return
        body = b""
        try:
            if own_body:
                await self.app(scope, receive, send)
            else:
                body = await self._read_body(cls, receive)
                await self.app(scope, _replay(body, receive), send)
        except _Refused as refusal:
            await self._refuse(cls, refusal, send)
        finally:
            self.bytes_held -= len(body)
            self.control.release(cls)

    async def _refuse(self, cls: RouteClass, refusal: _Refused, send: Send) -> None:
        self.refused.labels(cls.value, refusal.reason).inc()
        if refusal.response is not None:
            await refusal.response(send)

    async def _read_body(self, cls: RouteClass, receive: Receive) -> bytes:
        """The whole body, counted in ``bytes_held`` (by the caller once this returns)."""
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.limits.body_seconds):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Refused("disconnected", None)
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    self.bytes_held += len(chunk)
                    if size > self.limits.max_body_bytes:
                        raise _Refused("too_large", self.too_large)
                    if self.bytes_held > self.limits.max_body_bytes_in_flight:
                        raise _Refused("memory", self.overloaded[(cls, "memory")])
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            if await self._too_deep(body):
                raise _Refused("too_deep", self.too_deep)
        except TimeoutError:
            self.bytes_held -= size
            raise _Refused("too_slow", self.too_slow) from None
        except BaseException:
            self.bytes_held -= size
            raise
        return body

    async def _too_deep(self, body: bytes) -> bool:
        limit = self.limits.max_json_depth
        if len(body) <= limit:
            return False
        if len(body) <= SCAN_IN_THREAD_BYTES:
            return text_too_deep(body, limit)
        return await asyncio.get_running_loop().run_in_executor(None, text_too_deep, body, limit)


NUL_IN_URL = Canned(
    422, "validation_error", "the URL holds a NUL character (%00), which no name, id or value can", field="url"
)


def _url_refusal(scope: Scope, repeatable: frozenset[str]) -> _Refused | None:
    if "\x00" in scope["path"]:
        return _Refused("nul", NUL_IN_URL)
    query: bytes = scope.get("query_string", b"")
    if not query:
        return None
    if b"%00" in query:
        return _Refused("nul", NUL_IN_URL)
    counts = Counter(name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    repeated = sorted(name for name, n in counts.items() if n > 1 and name not in repeatable)
    if repeated:
        detail = f"query parameter {repeated[0]!r} is given more than once; give it once"
        return _Refused("repeated", Canned(422, "validation_error", detail, field=repeated[0]))
    return None


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # the server refuses a malformed length itself
    return 0


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once, then the server's own ``receive`` (a later disconnect reaches the app)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def list_query_names(routes: Sequence[BaseRoute]) -> frozenset[str]:
    """The query parameters some route takes as a list (given once per value)."""
    names: set[str] = set()
    for route in routes:
        dependant = getattr(route, "dependant", None)
        for param in dependant.query_params if dependant is not None else ():
            annotation = param.field_info.annotation
            if any(get_origin(t) is list for t in (annotation, *get_args(annotation))):
                names.add(param.alias)
    return frozenset(names)
