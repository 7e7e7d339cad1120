"""``S3ArtifactStore``: an S3-compatible bucket (AWS S3, MinIO, Ceph, moto...), opened from an
``s3://bucket/prefix`` URL through fsspec/s3fs (the ``learnloop[s3]`` extra, imported here only).

The endpoint, region and credentials come from the usual AWS variables (``AWS_ENDPOINT_URL``,
``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, or a profile).

Every object carries its SHA-256, checked on every load, so a tampered or truncated object is an
``ArtifactError`` and never half of a model:
- a blob (``put_bytes``) holds its digest in its own metadata, written with it in one PUT;
- a directory (``put_dir``) is its files under a fresh generation prefix plus ``index.json``
  (each file's size and SHA-256) written last: the index is the commit, so a reader sees the old
  directory or the new one. ``get_dir`` downloads a generation once into a local cache,
  verified, and answers from that cache afterwards. A writer caches nothing: the training
  process, which writes every version, would fill its cache with versions it never reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from learnloop.artifacts.base import check_key, file_sha256
from learnloop.errors import ArtifactError, MissingExtraError, ValidationError

INDEX = "index.json"  # a directory's commit record, beside its generation prefixes
GENERATION = re.compile(r"[0-9a-f]{32}")  # a directory's generation prefix: uuid4().hex
DIGEST_META = "sha256"  # a blob's user metadata entry (x-amz-meta-sha256)
CACHE_ENV = "LEARNLOOP_ARTIFACT_CACHE"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def default_cache_dir() -> Path:
    """Where a process that was given no cache directory keeps downloaded directories."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"learnloop-artifacts-{os.getuid()}"


def split_s3_url(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix`` (the prefix without slashes around it)."""
    parts = urlsplit(url)
    prefix = parts.path.strip("/")
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment or "//" in prefix:
        raise ValidationError(f"artifact URL {url!r} is not an S3 URL: write s3://bucket/prefix", field="artifact_url")
    return parts.netloc, prefix


def s3_filesystem() -> Any:
    """An s3fs filesystem configured from the AWS variables."""
    try:
        import s3fs  # the s3 extra, imported only where an s3:// store is opened
    except ImportError as exc:
        raise MissingExtraError(
            "s3:// artifact stores need the s3 extra: pip install 'learnloop[s3]'", extra="s3"
        ) from exc
    client_kwargs: dict[str, str] = {}
    if endpoint := os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"):
        client_kwargs["endpoint_url"] = endpoint
    if region := os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION"):
        client_kwargs["region_name"] = region
    credentials = {
        name: os.environ[variable]
        for name, variable in (
            ("key", "AWS_ACCESS_KEY_ID"),
            ("secret", "AWS_SECRET_ACCESS_KEY"),
            ("token", "AWS_SESSION_TOKEN"),
        )
        if os.environ.get(variable)
    }
    # One filesystem (one client, one connection pool) per process and configuration: fsspec
    # keeps it by these arguments and makes a new one after a fork. No listings cache: other
    # processes write to the bucket.
    return s3fs.S3FileSystem(client_kwargs=client_kwargs, use_listings_cache=False, **credentials)


class S3ArtifactStore:
    def __init__(self, bucket: str, prefix: str, cache_dir: Path | None = None) -> None:
        self.bucket, self.prefix = bucket, prefix
        self.fs = s3_filesystem()
        from botocore.exceptions import BotoCoreError  # s3fs brought it

        self.errors: tuple[type[Exception], ...] = (OSError, ValueError, BotoCoreError)
        self.cache_root = (cache_dir or default_cache_dir()) / sha256_hex(self.url.encode())[:16]

    @classmethod
    def from_url(cls, url: str, cache_dir: Path | None = None) -> S3ArtifactStore:
        return cls(*split_s3_url(url), cache_dir=cache_dir)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _path(self, ref: str) -> str:
        if "://" in ref:
            raise ArtifactError(f"artifact {ref} is not in this store ({self.url})")
        return "/".join(part for part in (self.bucket, self.prefix, check_key(ref)) if part)

    def _call(self, what: str, ref: str, action: Any, *args: Any, **kwargs: Any) -> Any:
        """``action(*args)``, an unreachable or refusing store said as an ``ArtifactError``."""
        try:
            return action(*args, **kwargs)
        except FileNotFoundError:
            raise
        except self.errors as exc:
            raise ArtifactError(f"artifact store {self.url}: cannot {what} {ref}: {exc}") from exc

    # -- blobs ---------------------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes) -> str:
        path = self._path(check_key(key))
        self._call("write", key, self.fs.pipe_file, path, data, Metadata={DIGEST_META: sha256_hex(data)})
        return key

    def get_bytes(self, ref: str) -> bytes:
        path = self._path(ref)
        for attempt in range(2):  # a second look covers a replacement between the two requests
            try:
                expected = self._call("read", ref, self.fs.metadata, path).get(DIGEST_META)
                data: bytes = self._call("read", ref, self.fs.cat_file, path)
            except FileNotFoundError as exc:
                raise ArtifactError(f"artifact file missing: {ref} (looked in s3://{path})") from exc
            if expected is None:
                raise ArtifactError(f"artifact {ref} in {self.url} has no recorded SHA-256: not written by learnloop")
            if sha256_hex(data) == expected:
                return data
            if attempt == 0:
                continue
        raise ArtifactError(f"artifact {ref} does not match its recorded SHA-256 (tampered or truncated)")

    # -- directories ---------------------------------------------------------------------------

    def put_dir(self, key: str, source: Path) -> str:
        base = self._path(check_key(key))
        generation = uuid.uuid4().hex
        files: dict[str, dict[str, Any]] = {}
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            name = file.relative_to(source).as_posix()
            files[name] = {"sha256": file_sha256(file), "size": file.stat().st_size}
            self._call("write", key, self.fs.put_file, str(file), f"{base}/{generation}/{name}")  # streamed
        previous = self._read_index(key, base)
        index = json.dumps({"generation": generation, "files": files}, sort_keys=True).encode()
        self._call("write", key, self.fs.pipe_file, f"{base}/{INDEX}", index)  # the commit
        if previous is not None and previous["generation"] != generation:
            self._remove(f"{base}/{previous['generation']}")
            shutil.rmtree(self.cache_root / key / str(previous["generation"]), ignore_errors=True)
        return key

    def _read_index(self, ref: str, base: str) -> dict[str, Any] | None:
        try:
            raw = self._call("read", ref, self.fs.cat_file, f"{base}/{INDEX}")
        except FileNotFoundError:
            return None
        try:
            index = json.loads(raw)
            if not isinstance(index, dict) or not GENERATION.fullmatch(str(index["generation"])):
                raise TypeError("not an index")
            if not isinstance(index["files"], dict):
                raise TypeError("no files")
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"artifact {ref} has a corrupt {INDEX} in {self.url}: {exc}") from exc
        return index

    def get_dir(self, ref: str) -> Path:
        base = self._path(ref)
        for attempt in range(2):  # the generation read may be replaced while it downloads
            index = self._read_index(ref, base)
            if index is None:
                raise ArtifactError(f"artifact directory missing: {ref} (looked in s3://{base})")
            target = self.cache_root / ref / str(index["generation"])
            if target.is_dir():  # only a verified download is ever renamed there
                return target
            try:
                self._download(ref, base, index, target)
                return target
            except FileNotFoundError:
                if attempt == 1:
                    raise ArtifactError(f"artifact {ref} lost a file while it was read: try again") from None
        raise AssertionError("unreachable")

    def _download(self, ref: str, base: str, index: dict[str, Any], target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
        try:
            for name, entry in index["files"].items():
                check_key(name)
                local = staging / name
                local.parent.mkdir(parents=True, exist_ok=True)
                self._call("read", ref, self.fs.get_file, f"{base}/{index['generation']}/{name}", str(local))
                if local.stat().st_size != entry.get("size") or file_sha256(local) != entry.get("sha256"):
                    raise ArtifactError(
                        f"artifact {ref}: {name} does not match its recorded SHA-256 (tampered or truncated)"
                    )
            try:
                staging.rename(target)
            except OSError:  # another reader put the same generation there first
                if not target.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # -- removal -------------------------------------------------------------------------------

    def _remove(self, path: str) -> bool:
        try:
            if not self.fs.exists(path):
                return False
            self.fs.rm(path, recursive=True)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ArtifactError(f"artifact store {self.url}: cannot delete {path}: {exc}") from exc
        return True

    def delete(self, ref: str) -> bool:
        path = self._path(ref)
        removed = self._remove(path)
        shutil.rmtree(self.cache_root / ref, ignore_errors=True)
        return removed

    def size(self, ref: str) -> int:
        path = self._path(ref)
        try:
            if not self.fs.exists(path):
                return 0
            return int(self.fs.du(path, total=True))
        except FileNotFoundError:
            return 0
        except self.errors as exc:
            raise ArtifactError(f"artifact store {self.url}: cannot measure {ref}: {exc}") from exc
