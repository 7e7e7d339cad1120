"""Time-ordered identifiers (UUIDv7, RFC 9562)."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """A UUIDv7: 48-bit Unix milliseconds, then a 12-bit counter that keeps ids
    generated in the same millisecond strictly increasing, then random bits."""
    return uuid.UUID(int=_uuid7_int())


def _uuid7_int() -> int:
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                ms += 1
                _counter = 0
        else:
            _counter = 0
        _last_ms = ms
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    return (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand


def new_id() -> str:
    """``str(uuid7())``, spelled out without the ``UUID`` object (one per stored event)."""
    h = f"{_uuid7_int():032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


MIN_SUFFIX = 6  # the fewest characters of an id's end that name it (``JobService.find``)


def short_id(id_: str) -> str:
    """An id as a person is shown it in a narrow place: its last group, 12 random hexadecimal
    digits (the first groups of UUIDv7 ids made about the same time are the same)."""
    return id_.rsplit("-", 1)[-1]
