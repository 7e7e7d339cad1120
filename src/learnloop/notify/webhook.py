"""Webhook delivery over HTTP, signed so receivers can tell it came from learnloop.

Every request is a ``POST`` of a JSON body (``Content-Type: application/json``) with:

* ``X-Learnloop-Event``: the event kind (``promoted``, ``rolled_back``, ...);
* ``X-Learnloop-Delivery``: the delivery id (the same on every retry of one delivery, so a
  receiver can drop duplicates);
* ``X-Learnloop-Timestamp``: when this attempt was signed, Unix seconds;
* ``X-Learnloop-Signature``: ``sha256=`` + the hex HMAC-SHA256, keyed with the webhook's
  secret, of the bytes ``"{timestamp}.{body}"`` (the timestamp header, a dot, the raw body).

A receiver recomputes the HMAC over the raw body it received, compares in constant time, and
refuses a timestamp too far from its own clock (replays): ``verify_signature`` does all three.

Answers: any 2xx is delivered; 408, 429 and 5xx, timeouts and connection errors are retried
later (``Retry-After`` honoured); any other status (a 4xx, a 3xx: redirects are not
followed) fails the delivery for good.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from learnloop.clock import Clock
from learnloop.domain import Event
from learnloop.notify.base import DeliveryOutcome, Outcome
from learnloop.notify.payloads import encode
from learnloop.retry import parse_retry_after

if TYPE_CHECKING:  # httpx is imported when a webhook is sent: learnloop's CLI starts without it
    import httpx

SIGNATURE_PREFIX = "sha256="
RETRIED_STATUSES = frozenset({408, 425, 429})
USER_AGENT = "learnloop-webhooks/1"


def timeout() -> httpx.Timeout:
    """A delivery's time limits: 3 s to connect, 5 s for the rest."""
    import httpx

    return httpx.Timeout(5.0, connect=3.0)


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Learnloop-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes,
    signature: str,
    tolerance: float = 300.0,
    *,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` is learnloop's for ``body`` at ``timestamp`` under ``secret``, and
    ``timestamp`` is within ``tolerance`` seconds of ``now`` (default: this machine's clock)."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent, body).encode(), signature.strip().encode())


def classify(response: httpx.Response, clock: Clock) -> DeliveryOutcome:
    code = response.status_code
    if 200 <= code < 300:
        return DeliveryOutcome(Outcome.DELIVERED, code)
    error = f"HTTP {code}: {response.text[:200]}".strip()
    if code in RETRIED_STATUSES or code >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"), clock.now())
        return DeliveryOutcome(Outcome.RETRY, code, error, retry_after)
    return DeliveryOutcome(Outcome.FAILED, code, error)


class WebhookNotifier:
    """Sends events to one URL, one attempt per ``send`` (the service schedules retries)."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        client: httpx.Client,
        clock: Clock,
        format: str = "json",
        delivery_id: Callable[[Event], str] | str = lambda e: f"event-{e.id}",
    ) -> None:
        self.url = url
        self.secret = secret
        self.client = client
        self.clock = clock
        self.format = format
        self._delivery_id = delivery_id

    def request(self, event: Event) -> tuple[bytes, dict[str, str]]:
        """The body and headers of an attempt at ``event``, signed now."""
        body = encode(event, self.format)
        timestamp = int(self.clock.now().timestamp())
        delivery = self._delivery_id if isinstance(self._delivery_id, str) else self._delivery_id(event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Learnloop-Event": event.kind,
            "X-Learnloop-Delivery": delivery,
            "X-Learnloop-Timestamp": str(timestamp),
            "X-Learnloop-Signature": sign(self.secret, timestamp, body),
        }
        return body, headers

    def send(self, event: Event) -> DeliveryOutcome:
        import httpx

        body, headers = self.request(event)
        try:
            response = self.client.post(self.url, content=body, headers=headers, timeout=timeout())
        except httpx.TransportError as exc:  # connection refused, DNS, timeouts, protocol errors
            return DeliveryOutcome(Outcome.RETRY, None, f"{type(exc).__name__}: {exc}"[:500])
        except httpx.HTTPError as exc:  # an unusable URL and the like: retrying will not help
            return DeliveryOutcome(Outcome.FAILED, None, f"{type(exc).__name__}: {exc}"[:500])
        return classify(response, self.clock)
