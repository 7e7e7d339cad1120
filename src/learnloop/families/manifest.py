"""A trained version's artifact: the family's files plus ``manifest.json``.

The manifest names the family key, its format version, the library versions, the learnloop
that wrote it and a SHA-256 of every file; ``load_predictor`` refuses anything that does not
match before a single byte is unpickled, with an error naming what was saved and what is
installed. Where artifacts live is the store's business (``learnloop.artifacts``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from learnloop import __version__
from learnloop.artifacts import ArtifactStore, file_sha256
from learnloop.errors import ArtifactError
from learnloop.families import FAMILIES, ModelFamily, Predictor, get_family

MANIFEST = "manifest.json"
# Files a family saves beside a version that can be made again and that loading does not need
# (``learnloop.retention`` drops them once the version no longer serves): tfidf-logreg's term
# counts of its training texts, read only by a retrain that starts from that version.
CACHE_FILES: dict[str, tuple[str, ...]] = {"tfidf-logreg": ("train_counts.npz",)}


def save_predictor(store: ArtifactStore, key: str, family_key: str, predictor: Predictor, extra: dict[str, Any]) -> str:
    """Save ``predictor`` under ``key``; return the key to record."""
    family = get_family(family_key)
    with tempfile.TemporaryDirectory(prefix="learnloop-artifact-") as tmp:
        directory = Path(tmp)
        family.save(predictor, directory)
        files = file_hashes(directory)
        manifest = {
            "family": family.key,
            "format_version": family.format_version,
            "libraries": family.library_versions(),
            "learnloop": __version__,
            "labels": list(predictor.labels),
            "files": files,
            **extra,
        }
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return store.put_dir(key, directory)


def file_hashes(directory: Path) -> dict[str, str]:
    """The SHA-256 of every file directly in ``directory``, by name (``manifest.json`` excluded)."""
    return {p.name: file_sha256(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != MANIFEST}


def read_manifest(directory: Path, ref: str) -> dict[str, Any]:
    """The manifest of the artifact in ``directory``, or an ``ArtifactError`` (missing, corrupt)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(f"artifact {ref} has no {MANIFEST}") from exc
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"artifact {ref} has a corrupt {MANIFEST}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"artifact {ref} has a corrupt {MANIFEST}: not an object")
    return manifest


def check_libraries(manifest: dict[str, Any], installed: dict[str, str], ref: str) -> None:
    """An ``ArtifactError`` naming each library whose saved version differs from the installed one."""
    saved: dict[str, str] = manifest.get("libraries") or {}
    differ = [name for name in sorted(set(saved) | set(installed)) if saved.get(name) != installed.get(name)]
    if differ:
        said = "; ".join(
            f"{name} {saved.get(name, '(none)')}, installed {installed.get(name, '(none)')}" for name in differ
        )
        pins = " ".join(f"{name}=={saved[name]}" for name in differ if name in saved)
        raise ArtifactError(
            f"artifact {ref} was saved with {said}: retrain it" + (f" or install {pins}" if pins else "")
        )


def verify_files(directory: Path, manifest: dict[str, Any], ref: str) -> None:
    """An ``ArtifactError`` when a file the manifest records is missing or differs from its hash."""
    for name, digest in manifest.get("files", {}).items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"artifact {ref} is missing {name}")
        if file_sha256(path) != digest:
            raise ArtifactError(f"artifact {ref}: {name} does not match its recorded SHA-256 (corrupt)")


def _written_by(manifest: dict[str, Any]) -> str:
    return f" (written by learnloop {manifest['learnloop']})" if manifest.get("learnloop") else ""


def check_compatible(manifest: dict[str, Any], ref: str) -> ModelFamily:
    """The family that can load this artifact, or an ``ArtifactError`` naming both sides of
    the mismatch (family, format version, library versions) and what to do about it."""
    key = manifest.get("family")
    family = FAMILIES.get(key) if isinstance(key, str) else None
    if family is None:
        raise ArtifactError(
            f"artifact {ref} was saved by model family {key!r}{_written_by(manifest)}, which this learnloop "
            f"does not have (it has {', '.join(sorted(FAMILIES))}): retrain it or install the learnloop that wrote it"
        )
    saved_format = manifest.get("format_version")
    if saved_format != family.format_version:
        raise ArtifactError(
            f"artifact {ref} is {family.key} format {saved_format}{_written_by(manifest)}; this learnloop "
            f"reads format {family.format_version}: retrain it or install the learnloop that wrote it"
        )
    check_libraries(manifest, family.library_versions(), ref)
    return family


def load_predictor(store: ArtifactStore, ref: str) -> Predictor:
    """Load the version at ``ref`` (a key, or an old absolute URI), checking its manifest first."""
    directory = store.get_dir(ref)
    manifest = read_manifest(directory, ref)
    family = check_compatible(manifest, ref)
    verify_files(directory, manifest, ref)
    return family.load(directory)


def check_servable(store: ArtifactStore, ref: str) -> None:
    """Refuse, before a version is stored or put on traffic, an artifact that would not serve:
    a classifier's predictor must load; a generative version's adapter (loaded onto its base
    only where it is served) must be of a family and format this learnloop reads, saved with
    the installed libraries, every file intact."""
    directory = store.get_dir(ref)
    manifest = read_manifest(directory, ref)
    family = check_compatible(manifest, ref)
    verify_files(directory, manifest, ref)
    if family.task == "classification":
        family.load(directory)


def drop_caches(store: ArtifactStore, ref: str, family_key: str) -> list[str]:
    """Store the version at ``ref`` again without its family's cache files (``CACHE_FILES``),
    its manifest rewritten to record neither their hashes nor them (it still loads and
    verifies); return the names dropped (none: nothing was written)."""
    names = CACHE_FILES.get(family_key, ())
    source = store.get_dir(ref)
    manifest = read_manifest(source, ref)
    present = [name for name in names if (source / name).is_file()]
    if not present:
        return []
    with tempfile.TemporaryDirectory(prefix="learnloop-artifact-") as tmp:
        directory = Path(tmp) / "version"
        shutil.copytree(source, directory, ignore=shutil.ignore_patterns(*present))
        files = {k: v for k, v in manifest.get("files", {}).items() if k not in present}
        dropped = sorted({*manifest.get("dropped_caches", []), *present})
        manifest = {**manifest, "files": files, "dropped_caches": dropped}
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        store.put_dir(ref, directory)
    return present
