"""``HostCheck``: only the configured host names reach the app (pure ASGI, outermost).

A page on another site can make a browser send requests to a loopback server through DNS
rebinding (its own name, resolved to 127.0.0.1): the browser then names that site in the
``Host`` header, and the dashboard's same-origin check, which compares ``Origin`` with
``Host``, would agree with it. So every request (every route, keys or not) must name one of
``settings.access.allowed_hosts`` (the loopback names by default; ``serve --allowed-host``
adds others; ``*`` allows any); any other name, or none, is answered 400 before routing.
"""

from __future__ import annotations

from collections.abc import Iterable

from learnloop.api.guard import ASGIApp, Canned, Receive, Scope, Send


def host_name(header: str) -> str:
    """The name in a Host header, without its port, lower case (``[::1]:8000`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    name = header.rsplit(":", 1)[0] if header.count(":") == 1 else header
    return name.rstrip(".")


class HostCheck:
    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        names = {host_name(h) for h in allowed}
        self.any = "*" in names
        self.allowed = frozenset(names)
        self.refused = Canned(400, "invalid_host", "the Host header names a host this server does not answer for")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.any:
            host = next((v for k, v in scope["headers"] if k == b"host"), b"")
            if host_name(host.decode("latin-1")) not in self.allowed:
                await self.refused(send)
                return
        await self.app(scope, receive, send)
