"""Texts by a 16-byte hash: how a family knows which texts it has seen (or embedded) without
keeping them, and how it saves those keys (a plain ``uint8`` array: no pickle, and no byte
string whose trailing zero bytes NumPy would drop)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np

KEY_BYTES = 16


def text_key(text: str, salt: str = "") -> bytes:
    """The key of ``text`` (``salt``: what else the keyed value depends on, such as a truncation)."""
    return hashlib.blake2b(f"{salt}\x00{text}".encode(), digest_size=KEY_BYTES).digest()


def keys_to_array(keys: Iterable[bytes]) -> np.ndarray[Any, np.dtype[np.uint8]]:
    joined = b"".join(keys)
    return np.frombuffer(joined, dtype=np.uint8).reshape(-1, KEY_BYTES).copy()


def keys_from_array(array: np.ndarray[Any, Any]) -> list[bytes]:
    if array.ndim != 2 or array.shape[1] != KEY_BYTES or array.dtype != np.uint8:
        raise ValueError(f"text keys must be a (n, {KEY_BYTES}) uint8 array, got {array.dtype} {array.shape}")
    return [row.tobytes() for row in array]
