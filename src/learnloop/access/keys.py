"""A key's form: ``ll_<8 hex>_<43 url-safe chars>``. The first part is public (the prefix, by
which the key is found and recognised in lists); the rest is 256 random bits from ``secrets``.
Only ``secret_hash`` (SHA-256 of the whole key) is ever stored: a 256-bit random secret needs
no salt or slow hash, and the lookup by prefix keeps the comparison to one stored hash."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from learnloop.errors import ValidationError

PREFIX_START = "ll_"
PREFIX_CHARS = len(PREFIX_START) + 8
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DURATION = re.compile(r"(\d{1,6})([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def new_key() -> tuple[str, str]:
    """A fresh key and its public prefix."""
    prefix = PREFIX_START + secrets.token_hex(4)
    return f"{prefix}_{secrets.token_urlsafe(32)}", prefix


def secret_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def prefix_of(key: str) -> str | None:
    """The public prefix of something shaped like a scoped key, else None."""
    if key.startswith(PREFIX_START) and len(key) > PREFIX_CHARS and key[PREFIX_CHARS] == "_":
        return key[:PREFIX_CHARS]
    return None


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValidationError(
            "a key's name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", field="name"
        )
    return name


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m`` or ``3600s``."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValidationError(f"a duration is a positive number and a unit (90d, 12h, 30m, 3600s), not {text!r}",
                              field="expires")  # fmt: skip
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
