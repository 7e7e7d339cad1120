"""``LocalArtifactStore``: a directory on this machine, opened from a ``file:///...`` URL."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from learnloop.artifacts.base import check_key
from learnloop.errors import ArtifactError, ValidationError

LEGACY_PREFIX = "file://"  # rows written before keys: "file://" + an absolute path, unquoted


def path_of_file_url(url: str) -> Path:
    """The absolute directory a ``file:///...`` URL names."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise ValidationError(
            f"artifact URL {url!r} is not an absolute file URL: write file:///absolute/path", field="artifact_url"
        )
    return Path(unquote(parts.path))


class LocalArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @classmethod
    def from_url(cls, url: str, cache_dir: Path | None = None) -> LocalArtifactStore:
        return cls(path_of_file_url(url))  # already local: nothing to cache

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def _path(self, ref: str) -> Path:
        if ref.startswith(LEGACY_PREFIX):  # an absolute URI of a row from before keys
            return Path(ref.removeprefix(LEGACY_PREFIX))
        if "://" in ref:
            raise ArtifactError(f"artifact {ref} is not in this store ({self.url})")
        return self.root / check_key(ref)

    def put_dir(self, key: str, source: Path) -> str:
        target = self.root / check_key(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
        shutil.copytree(source, staging, dirs_exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)  # atomic on one filesystem: readers never see half a directory
        return key

    def get_dir(self, ref: str) -> Path:
        path = self._path(ref)
        if not path.is_dir():
            raise ArtifactError(f"artifact directory missing: {ref} (looked in {path})")
        return path

    def put_bytes(self, key: str, data: bytes) -> str:
        target = self.root / check_key(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        return key

    def get_bytes(self, ref: str) -> bytes:
        path = self._path(ref)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise ArtifactError(f"artifact file missing: {ref} (looked in {path})") from exc

    def delete(self, ref: str) -> bool:
        """Remove a file or a directory tree, then the directories above it left empty (up to the
        root). Refuses a path outside the store."""
        path = Path(os.path.normpath(self._path(ref)))  # no ".." past the checks below
        if path == self.root or not path.is_relative_to(self.root):
            raise ArtifactError(f"refusing to delete {path}: not inside the artifact store {self.root}")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            return False
        for parent in path.parents:
            if parent == self.root or not parent.is_relative_to(self.root):
                break
            try:
                parent.rmdir()
            except OSError:  # not empty (or gone already)
                break
        return True

    def size(self, ref: str) -> int:
        path = self._path(ref)
        if path.is_file():
            return path.stat().st_size
        if not path.is_dir():
            return 0
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
