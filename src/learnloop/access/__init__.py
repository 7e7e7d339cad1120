"""Who may do what: scoped API keys (stored as hashes), the principal a credential stands for,
dashboard sessions, and the throttle on repeated authentication failures."""

from learnloop.access.keys import parse_duration
from learnloop.access.service import OPEN, AccessService, Principal, keys_exist
from learnloop.access.throttle import FailureThrottle

__all__ = ["OPEN", "AccessService", "FailureThrottle", "Principal", "keys_exist", "parse_duration"]
