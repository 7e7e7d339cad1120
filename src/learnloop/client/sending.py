"""Whether to send a call again after a failed attempt, and when; and reading a success.

Retried, for every call: 429 and 503 (the server refused before doing anything: admission
control, a model that cannot serve yet) and a connection that could not be made. Retried only
for calls that are safe to send twice (``Call.resend_safe``: reads, and feedback, which
carries its idempotency key): 408, 502, 504 and a connection that failed after the request
went out (a timeout waiting for the answer). A prediction or a logged generation is not sent
again then: the server may have logged it already.

The wait is the policy's backoff (``learnloop.retry.RetryPolicy``), or the server's
``Retry-After`` when that is longer; a ``Retry-After`` beyond ``max_retry_after`` is not
waited for: the error is raised at once.
"""

from __future__ import annotations

import random
from typing import TypeVar

import httpx

from learnloop.client.calls import Call
from learnloop.client.errors import ClientError, TransportError, api_error
from learnloop.retry import RetryPolicy

T = TypeVar("T")

DEFAULT_RETRY = RetryPolicy(base=0.5, factor=2.0, cap=8.0, max_attempts=4, jitter=0.2, max_retry_after=30.0)
"""Four attempts in all, about 0.5, 1 and 2 s apart (or as long as the server's Retry-After
asks, up to 30 s)."""

ALWAYS_RETRIED = frozenset({429, 503})
RETRIED_WHEN_SAFE = frozenset({408, 502, 504})
NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class Retrying:
    """The retry decisions of one client: its policy, and the random source of the jitter."""

    def __init__(self, policy: RetryPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.rng = rng or random.Random()

    def wait(self, call: Call[T], attempt: int, outcome: httpx.Response | httpx.TransportError) -> float:
        """Seconds to wait before sending ``call`` again after failed attempt ``attempt``
        (1-based); raises the error for the caller when it is not to be sent again."""
        if isinstance(outcome, httpx.Response):
            refused = api_error(outcome)
            error: ClientError = refused
            status = outcome.status_code
            retry = status in ALWAYS_RETRIED or (call.resend_safe and status in RETRIED_WHEN_SAFE)
            retry_after = refused.retry_after
        else:
            error = TransportError(f"{call}: {type(outcome).__name__}: {outcome}")
            retry = call.resend_safe or isinstance(outcome, NOTHING_SENT)
            retry_after = None
        wait = self.policy.delay(attempt, self.rng, retry_after) if retry else None
        if wait is None or (retry_after is not None and retry_after > self.policy.max_retry_after):
            raise error from (outcome if isinstance(outcome, Exception) else None)
        return wait


def read(call: Call[T], response: httpx.Response) -> T:
    """The typed result of a successful answer."""
    try:
        return call.read(response.json())
    except (ValueError, KeyError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        raise ClientError(f"{call}: unexpected answer ({response.status_code}): {exc}") from exc
