"""Who may see the dashboard's pages and press its buttons.

* **Keys and scopes.** Once the server has keys, each page and button declares the scope it
  needs (``read`` for the pages, ``label`` for the labelling page and its buttons, ``admin``
  for the other buttons) through ``api.deps.Need``, which takes a key or this dashboard's
  session. The login form posts a key once; the server answers with a random session token
  (``AccessService.open_session``: only its hash is stored) in an HttpOnly, SameSite=Strict
  cookie that expires; logout deletes the session. Without keys (``serve`` allows that on
  loopback only) everyone on the machine may do everything, as with the API.
* **Same origin.** Every dashboard POST (the login too) must come from a page of this server:
  its ``Origin`` header, or when a browser sends none its ``Referer``, must name the host the
  request was sent to (which ``api.hosts`` checks against the allowed names). A form on another
  site, or a POST with neither header, is refused, so a page elsewhere cannot make a logged-in
  (or loopback) browser act.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request

from learnloop.access import Principal


def principal_of(request: Request) -> Principal | None:
    """Who the route's ``Need`` found (None on the public pages)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal


def same_origin(request: Request) -> bool:
    """The POST came from a page served by this host (Origin, else Referer)."""
    host = request.headers.get("host")
    source = request.headers.get("origin")
    if not source or source == "null":
        source = request.headers.get("referer")
    if not host or not source:
        return False
    parts = urlsplit(source)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()
