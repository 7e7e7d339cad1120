"""``RateLimitHeaders``: the ``RateLimit-Limit``, ``-Remaining`` and ``-Reset`` headers of the
bucket a request drew on (``Need`` leaves its ``Decision`` in the request's state), on every
answer it lets through (a 429 carries those of the bucket that refused it: ``api/errors.py``).
Pure ASGI: it only looks at the answer's first message."""

from __future__ import annotations

from typing import Any

from learnloop.access import Decision


class RateLimitHeaders:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                decision: Decision | None = scope.get("state", {}).get("rate_limit")
                if decision is not None:
                    message["headers"] = [*message.get("headers", ()), *decision.headers()]
            await send(message)

        await self.app(scope, receive, send_with_headers)
