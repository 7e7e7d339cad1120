"""Who may do what: scoped API keys (stored as hashes), the principal a credential stands for,
bearer JWTs, request rates, dashboard sessions, and the throttle on repeated authentication failures."""

from learnloop.access.keys import parse_duration
from learnloop.access.limits import Decision, RateLimitedError
from learnloop.access.principal import OPEN, Principal
from learnloop.access.service import AccessService, keys_exist
from learnloop.access.throttle import FailureThrottle
from learnloop.access.tokens import InvalidTokenError

__all__ = [
    "OPEN",
    "AccessService",
    "Decision",
    "FailureThrottle",
    "InvalidTokenError",
    "Principal",
    "RateLimitedError",
    "keys_exist",
    "parse_duration",
]
