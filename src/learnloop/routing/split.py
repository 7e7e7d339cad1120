"""Sticky traffic splits: the same subject lands on the same arm in every server process.

A request's *bucket* is a number in [0, 1) from a keyed hash (BLAKE2b) of the rollout id and
the subject (or, for an anonymous request, its prediction id). Arm B takes the buckets below
its share, so growing the share (5% -> 25% -> 50%) only ever moves subjects from A to B, never
back, and a new rollout reshuffles who goes first. No process-local state and no
``hash()`` (which is salted per process): every replica computes the same bucket.
"""

from __future__ import annotations

import hashlib

_SCALE = float(1 << 64)


def bucket(rollout_id: int, key: str) -> float:
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8, key=str(rollout_id).encode())
    return int.from_bytes(digest.digest(), "big") / _SCALE


def in_share(rollout_id: int, key: str, share: float) -> bool:
    return share > 0 and bucket(rollout_id, key) < share
