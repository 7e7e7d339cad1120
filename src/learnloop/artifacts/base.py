"""The ``ArtifactStore`` protocol and the rules for its keys.

A store holds trained versions (directories) and dataset snapshots and drift references
(blobs) under **keys**: relative, ``/``-separated strings such as ``models/sentiment/abc-v1``
or ``snapshots/sentiment/<hash>.jsonl.gz``. The database stores keys, never host paths, so
hosts with different disks (or an object store) can share one database. Rows written before
keys existed hold an absolute URI (``file:///...``); a store reads those too when it can.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

from learnloop.errors import ArtifactError


class ArtifactStore(Protocol):
    @property
    def url(self) -> str:
        """The URL this store was opened from (``file:///srv/learnloop/artifacts``)."""
        ...

    def put_dir(self, key: str, source: Path) -> str:
        """Store the directory ``source`` under ``key``, replacing what was there at once
        (a reader sees the old directory or the new one); return the key to record."""
        ...

    def get_dir(self, ref: str) -> Path:
        """A local directory holding the artifact at ``ref`` (a key, or an old absolute URI).
        A remote store materialises it in a local cache directory."""
        ...

    def put_bytes(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key``, atomically; return the key to record."""
        ...

    def get_bytes(self, ref: str) -> bytes: ...

    def delete(self, ref: str) -> bool:
        """Remove the file or directory at ``ref`` (missing is fine); True if it was there."""
        ...

    def size(self, ref: str) -> int:
        """Bytes stored under ``ref`` (a file, or every file of a directory); 0 when missing."""
        ...


def check_key(key: str) -> str:
    """``key`` if it is a well-formed relative key, else an ``ArtifactError`` naming the rule."""
    parts = key.split("/")
    if not key or "://" in key or "\\" in key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ArtifactError(f"bad artifact key {key!r}: keys are relative, like 'models/m/v1', without '.' or '..'")
    return key


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file at ``path``, read in chunks (what manifests and indexes record)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
