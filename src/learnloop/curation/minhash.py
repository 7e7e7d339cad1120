"""MinHash of texts: normalisation, shingles, signatures and LSH banding. Pure, numpy only.

Written with numpy rather than datasketch (2.0.0): on 50,000 SST-2 phrases (54 characters on
average) on a shared 2-core machine, grouping took 2-4 s end to end (exact Jaccard checks
included), datasketch 8-18 s in the same runs for ``MinHash.bulk`` and the LSH index and
queries alone (one SHA-1 and Python call per shingle).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

Unit = Literal["char", "word"]
U64 = npt.NDArray[np.uint64]

_MIX = np.uint64(0x9E3779B97F4A7C15)


def lsh_bands(threshold: float, num_perm: int, *, recall: float = 0.95) -> tuple[int, int]:
    """(bands, rows per band): the most rows per band (the fewest spurious candidates) with which a
    pair whose Jaccard equals ``threshold`` still becomes a candidate with probability ``recall``
    (a pair above the threshold with a higher one)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie strictly between 0 and 1, got {threshold}")
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= recall:
            best = (bands, rows)
    return best


def _token_ids(texts: Sequence[str], shingle: int, unit: Unit) -> tuple[U64, npt.NDArray[np.int64]]:
    """Every text as token ids (code points or CRC-32 of words), padded to ``shingle`` tokens, concatenated."""
    if unit == "char":
        padded = [t.ljust(shingle, "\0") for t in texts]
        lengths = np.fromiter((len(t) for t in padded), dtype=np.int64, count=len(padded))
        ids = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32)
        return ids.astype(np.uint64), lengths
    tokens: list[int] = []
    lengths = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        words = [zlib.crc32(word.encode()) for word in text.split(" ") if word]
        words += [0] * max(0, shingle - len(words))
        tokens += words
        lengths[i] = len(words)
    return np.asarray(tokens, dtype=np.uint64), lengths


def shingle_hashes(texts: Sequence[str], shingle: int, unit: Unit) -> tuple[U64, npt.NDArray[np.int64]]:
    """Hashes of every shingle of every text, concatenated, and each text's start offset.
    A text shorter than ``shingle`` tokens is padded and has one shingle."""
    if shingle < 1:
        raise ValueError(f"shingle must be at least 1, got {shingle}")
    ids, lengths = _token_ids(texts, shingle, unit)
    seq = ids + np.uint64(1)
    n = len(seq) - shingle + 1
    hashes = seq[:n].copy()
    for j in range(1, shingle):
        hashes *= _MIX
        hashes += seq[j : n + j]
    hashes ^= hashes >> np.uint64(29)
    valid = np.ones(len(seq), dtype=bool)  # drop windows that cross into the next text
    ends = np.cumsum(lengths)
    for j in range(1, shingle):
        valid[ends - j] = False
    counts = lengths - shingle + 1
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    return hashes[valid[:n]], offsets


def minhash_signatures(
    texts: Sequence[str], *, shingle: int = 5, unit: Unit = "char", num_perm: int = 128, seed: int = 0
) -> npt.NDArray[np.uint32]:
    """One row of ``num_perm`` MinHash values per (already normalised) text."""
    hashes, offsets = shingle_hashes(texts, shingle, unit)
    return signatures(hashes, offsets, num_perm, seed)


def signatures(hashes: U64, offsets: npt.NDArray[np.int64], num_perm: int, seed: int) -> npt.NDArray[np.uint32]:
    rng = np.random.default_rng(seed)
    mult = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
    add = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    out = np.empty((num_perm, len(offsets)), dtype=np.uint32)
    scratch = np.empty_like(hashes)
    for p in range(num_perm):  # multiply-shift hashing, one vectorised pass per permutation
        np.multiply(hashes, mult[p], out=scratch)
        scratch += add[p]
        scratch >>= np.uint64(32)
        out[p] = np.minimum.reduceat(scratch, offsets) if len(offsets) else []
    return np.ascontiguousarray(out.T)


_SPACE = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s]+")


def normalize_text(text: str) -> str:
    """Whitespace collapsed, case folded: what two texts share to be the same text."""
    return _SPACE.sub(" ", text).strip().casefold()


def dedup_key(text: str) -> str:
    """What two texts must share to be exact duplicates: normalised, punctuation set aside."""
    return normalize_text(_PUNCTUATION.sub(" ", text))
