"""Artifact stores, opened from a URL by ``open_store``: one file per kind, one line in
``STORES`` (keyed by URL scheme): ``file://`` (a directory here) and ``s3://`` (an
S3-compatible bucket through fsspec/s3fs, the ``learnloop[s3]`` extra).

The store layer's other half, beside the database (``learnloop.store``): directories and blobs
under keys, nothing about what they hold. A trained predictor's saved form (manifest, hashes,
the version check) is its family's (``families.manifest``)."""

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from learnloop.artifacts.base import ArtifactStore, check_key, file_sha256
from learnloop.artifacts.local import LocalArtifactStore
from learnloop.artifacts.s3 import S3ArtifactStore
from learnloop.errors import ValidationError

STORES: dict[str, Callable[[str, Path | None], ArtifactStore]] = {
    "file": LocalArtifactStore.from_url,
    "s3": S3ArtifactStore.from_url,
}
PLANNED = {"gs": "fleet", "gcs": "fleet", "az": "fleet", "abfs": "fleet"}  # scheme -> issue


def open_store(url: str, cache_dir: Path | None = None) -> ArtifactStore:
    """The artifact store at ``url`` (``file:///srv/learnloop/artifacts``, ``s3://bucket/prefix``).
    A remote store keeps the directories it downloads under ``cache_dir`` (default: the
    ``LEARNLOOP_ARTIFACT_CACHE`` directory, else one in the system's temporary directory)."""
    scheme = urlsplit(url).scheme.lower()
    opener = STORES.get(scheme)
    if opener is not None:
        return opener(url, cache_dir)
    if scheme in PLANNED:
        raise ValidationError(
            f"artifact URL {url!r}: {scheme}:// stores are not supported yet (issue: {PLANNED[scheme]}); "
            "use file:///absolute/path",
            field="artifact_url",
        )
    if not scheme:
        hint = f": write {Path(url).as_uri()}" if url.startswith("/") else ", like file:///absolute/path"
        raise ValidationError(f"artifact URL {url!r} has no scheme{hint}", field="artifact_url")
    raise ValidationError(
        f"artifact URL {url!r}: unknown scheme {scheme!r}; supported: " + ", ".join(f"{s}://" for s in sorted(STORES)),
        field="artifact_url",
    )


__all__ = [
    "PLANNED",
    "STORES",
    "ArtifactStore",
    "LocalArtifactStore",
    "S3ArtifactStore",
    "check_key",
    "file_sha256",
    "open_store",
]
