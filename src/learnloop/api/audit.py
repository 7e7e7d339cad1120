"""``AdminAudit``: every answer of an admin route is an ``admin_action`` event (pure ASGI).

Which routes are admin routes is what they declare (``api.deps.Need``), as the route-scope
table reads it, so a new admin route is audited without a line here. The event is written as
the answer starts, before its first byte leaves: a client that saw the answer can find the
event. It names the credential that ``Need`` admitted (``request.state.principal``), never a
secret; a request refused before that (401, 403) is an ``auth_failure`` event instead
(``api.deps.audit_failure``). On an open loopback server (no keys) no one is named, and
nothing is written.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from learnloop.access import OPEN, AccessService, Principal
from learnloop.access.audit import AuditEvent
from learnloop.api.deps import declared_needs
from learnloop.domain import Scope


class AdminAudit:
    def __init__(self, app: Any, access: AccessService) -> None:
        self.app = app
        self.access = access
        self._admin: dict[int, bool] = {}  # id(route) -> whether it needs the admin scope

    def is_admin(self, route: Any) -> bool:
        found = self._admin.get(id(route))
        if found is None:
            found = any(n.scope == Scope.ADMIN for n in declared_needs(route))
            self._admin[id(route)] = found
        return found

    def event_for(self, scope: dict[str, Any], status: int) -> AuditEvent | None:
        """The event of this answer, or None (not an admin route, or no one to name)."""
        principal: Principal | None = scope.get("state", {}).get("principal")
        route = scope.get("route")
        if principal is None or principal is OPEN or route is None or not self.is_admin(route):
            return None
        client = scope.get("client")
        return self.access.audit.action(
            principal.name,
            method=scope["method"],
            route=getattr(route, "path", "unmatched"),
            address=client[0] if client else "unknown",
            status=status,
            params={k: str(v) for k, v in scope.get("path_params", {}).items()},
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_recorded(message: dict[str, Any]) -> None:
            nonlocal started
            if not started and message["type"] == "http.response.start":
                started = True
                event = self.event_for(scope, message["status"])
                if event is not None:
                    await run_in_threadpool(self.access.audit.write, [event])
            await send(message)

        try:
            await self.app(scope, receive, send_recorded)
        except Exception:
            if not started:  # no answer was started: the server answers 500
                event = self.event_for(scope, 500)
                if event is not None:
                    await run_in_threadpool(self.access.audit.write, [event])
            raise
