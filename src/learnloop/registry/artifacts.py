"""Artifact storage: where trained versions and dataset snapshots live.

``ArtifactStore`` is the plug-in point (local directory now, S3 through fsspec later). A
version's artifact is a directory with the family's files plus ``manifest.json`` naming
the family key, its format version, the library versions and a SHA-256 of every file;
``load_predictor`` refuses anything that does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from learnloop.errors import ArtifactError
from learnloop.families import Predictor, get_family

MANIFEST = "manifest.json"


class ArtifactStore(Protocol):
    def put_dir(self, key: str, source: Path) -> str:
        """Store the directory ``source`` under ``key``; return its URI."""
        ...

    def get_dir(self, uri: str) -> Path:
        """A local directory holding the artifact at ``uri``."""
        ...

    def put_bytes(self, key: str, data: bytes) -> str: ...

    def get_bytes(self, uri: str) -> bytes: ...

    def delete(self, uri_or_key: str) -> bool:
        """Remove the file or directory at ``uri_or_key`` (missing is fine); True if it was there."""
        ...


class LocalArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, uri_or_key: str) -> Path:
        key = uri_or_key.removeprefix("file://")
        path = Path(key) if Path(key).is_absolute() else self.root / key
        return path

    def put_dir(self, key: str, source: Path) -> str:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
        shutil.copytree(source, staging, dirs_exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)  # atomic on one filesystem: readers never see half a directory
        return f"file://{target}"

    def get_dir(self, uri: str) -> Path:
        path = self._path(uri)
        if not path.is_dir():
            raise ArtifactError(f"artifact directory missing: {path}")
        return path

    def put_bytes(self, key: str, data: bytes) -> str:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        return f"file://{target}"

    def get_bytes(self, uri: str) -> bytes:
        path = self._path(uri)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ArtifactError(f"artifact file missing: {path}") from exc

    def delete(self, uri_or_key: str) -> bool:
        """Remove a file or a directory tree, then the directories above it left empty (up to the
        root). Refuses a path outside the store."""
        path = Path(os.path.normpath(self._path(uri_or_key)))  # no ".." past the checks below
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_predictor(store: ArtifactStore, key: str, family_key: str, predictor: Predictor, extra: dict[str, Any]) -> str:
    family = get_family(family_key)
    with tempfile.TemporaryDirectory(prefix="learnloop-artifact-") as tmp:
        directory = Path(tmp)
        family.save(predictor, directory)
        files = {p.name: _sha256(p) for p in sorted(directory.iterdir()) if p.is_file()}
        manifest = {
            "family": family.key,
            "format_version": family.format_version,
            "libraries": family.library_versions(),
            "labels": list(predictor.labels),
            "files": files,
            **extra,
        }
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return store.put_dir(key, directory)


def load_predictor(store: ArtifactStore, uri: str) -> Predictor:
    directory = store.get_dir(uri)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(f"artifact {uri} has no {MANIFEST}") from exc
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"artifact {uri} has a corrupt {MANIFEST}: {exc}") from exc
    family = get_family(manifest.get("family", "?"))
    if manifest.get("format_version") != family.format_version:
        raise ArtifactError(
            f"artifact {uri} has format {manifest.get('format_version')} of family {family.key}; "
            f"this learnloop reads format {family.format_version}"
        )
    if manifest.get("libraries") != family.library_versions():
        raise ArtifactError(
            f"artifact {uri} was saved with {manifest.get('libraries')}; installed: {family.library_versions()}"
        )
    for name, digest in manifest.get("files", {}).items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"artifact {uri} is missing {name}")
        if _sha256(path) != digest:
            raise ArtifactError(f"artifact {uri}: {name} does not match its recorded SHA-256 (corrupt)")
    return family.load(directory)
