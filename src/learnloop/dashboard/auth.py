"""Who may press the dashboard's buttons.

* **The admin key.** When the server has an API key (``settings.api_key``), an action needs it.
  The login form posts the key once; the server answers with an HttpOnly, SameSite=Strict
  cookie holding an HMAC-SHA256 of a fixed message under the key (never the key itself), and
  checks it on every action with ``hmac.compare_digest``. Without a key (``serve`` allows that
  on loopback only) everyone on the machine is admin, as with the API.
* **Same origin.** Every dashboard POST (the login too) must come from a page of this server:
  its ``Origin`` header, or when a browser sends none its ``Referer``, must name the host the
  request was sent to. A form on another site, or a POST with neither header, is refused, so a
  page elsewhere cannot make a logged-in (or loopback) browser act.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.requests import Request

COOKIE = "learnloop_admin"
_MESSAGE = b"learnloop dashboard admin session v1"


def admin_token(api_key: str) -> str:
    return hmac.new(api_key.encode(), _MESSAGE, hashlib.sha256).hexdigest()


def key_matches(given: str, api_key: str) -> bool:
    return hmac.compare_digest(given.encode(), api_key.encode())


def is_admin(request: Request, api_key: str | None) -> bool:
    if api_key is None:
        return True
    cookie = request.cookies.get(COOKIE)
    return cookie is not None and hmac.compare_digest(cookie.encode(), admin_token(api_key).encode())


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
