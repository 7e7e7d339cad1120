"""Who may do what: scoped API keys (stored as hashes), the principal a credential stands for,
bearer JWTs, dashboard sessions, and the throttle on repeated authentication failures."""

from learnloop.access.keys import parse_duration
from learnloop.access.principal import OPEN, Principal
from learnloop.access.service import AccessService, keys_exist
from learnloop.access.throttle import FailureThrottle
from learnloop.access.tokens import InvalidTokenError

__all__ = [
    "OPEN",
    "AccessService",
    "FailureThrottle",
    "InvalidTokenError",
    "Principal",
    "keys_exist",
    "parse_duration",
]
