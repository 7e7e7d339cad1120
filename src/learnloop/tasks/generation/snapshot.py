"""A content-addressed snapshot of a generative model's three training sets.

The stored form is gzipped JSON Lines: a header line (``{"format": FORMAT, "version":
FORMAT_VERSION}``), then one line per row, ``{"set": "sft"|"preference"|"kto", "part":
"train"|"held_out", ...the row's JSON}``, sets and parts in that order and rows in time order,
every object with sorted keys. The hash is the SHA-256 of those lines, so the same rows give the
same hash (and the same bytes: gzip without a timestamp) whenever and wherever they are curated,
and a version names exactly what it trained on and what it was judged on.

What curation counted and the feedback cutoff are the snapshot's lineage: they travel beside it
(``GenerationSnapshot.counts`` / ``.cutoff``, recorded with the registry's snapshot row as for
classification, ``domain.StoredSnapshot``) and are not part of the hash: curating the same
feedback again later names the same snapshot.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from learnloop.artifacts import ArtifactStore
from learnloop.errors import ArtifactError
from learnloop.tasks.generation.sets import (
    PARTS,
    SET_NAMES,
    GenerationSets,
    KtoRow,
    PreferencePair,
    SftRow,
    Split,
    row_from_json,
)

FORMAT = "learnloop-generation-snapshot"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class GenerationSnapshot:
    hash: str
    sets: GenerationSets

    @property
    def counts(self) -> dict[str, Any]:
        return self.sets.counts

    @property
    def cutoff(self) -> datetime | None:
        return self.sets.cutoff

    def to_jsonl_gz(self) -> bytes:
        return gzip.compress(b"".join(_lines(self.sets)), mtime=0)


def _dumps(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS) + b"\n"


def _lines(sets: GenerationSets) -> Iterator[bytes]:
    yield _dumps({"format": FORMAT, "version": FORMAT_VERSION})
    for name in SET_NAMES:
        for part in PARTS:
            for row in sets.rows(name, part):
                yield _dumps({"set": name, "part": part, **row.to_json()})


def content_hash(sets: GenerationSets) -> str:
    digest = hashlib.sha256()
    for line in _lines(sets):
        digest.update(line)
    return digest.hexdigest()


def build_snapshot(sets: GenerationSets) -> GenerationSnapshot:
    return GenerationSnapshot(content_hash(sets), sets)


def snapshot_key(model: str, snapshot_hash: str) -> str:
    """Where a snapshot's rows are stored in the artifact store (as for classification)."""
    return f"snapshots/{model}/{snapshot_hash}.jsonl.gz"


def write_snapshot(store: ArtifactStore, model: str, snapshot: GenerationSnapshot) -> str:
    """Store the snapshot's rows under their content key; the key to record."""
    return store.put_bytes(snapshot_key(model, snapshot.hash), snapshot.to_jsonl_gz())


def read_snapshot(
    data: bytes, *, counts: dict[str, Any] | None = None, cutoff: datetime | None = None
) -> GenerationSnapshot:
    """The snapshot ``to_jsonl_gz`` wrote (its lineage, recorded elsewhere, given back by the
    caller); a file of another format or version is an ``ArtifactError``."""
    try:
        lines = [line for line in gzip.decompress(data).splitlines() if line.strip()]
        header = orjson.loads(lines[0]) if lines else {}
    except (OSError, EOFError, orjson.JSONDecodeError) as exc:
        raise ArtifactError(f"generation snapshot is corrupt: {exc}") from exc
    if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
        raise ArtifactError(
            f"not a generation snapshot of format {FORMAT} version {FORMAT_VERSION} "
            f"(found {header.get('format')!r} version {header.get('version')!r})"
        )
    parts: dict[tuple[str, str], list[Any]] = {(n, p): [] for n in SET_NAMES for p in PARTS}
    for line in lines[1:]:
        row = orjson.loads(line)
        name, part = row.pop("set"), row.pop("part")
        parts[(name, part)].append(row_from_json(name, row))
    sets = GenerationSets(
        sft=Split[SftRow](tuple(parts[("sft", "train")]), tuple(parts[("sft", "held_out")])),
        preference=Split[PreferencePair](
            tuple(parts[("preference", "train")]), tuple(parts[("preference", "held_out")])
        ),
        kto=Split[KtoRow](tuple(parts[("kto", "train")]), tuple(parts[("kto", "held_out")])),
        counts=dict(counts or {}),
        cutoff=cutoff,
    )
    snapshot = build_snapshot(sets)
    return snapshot
