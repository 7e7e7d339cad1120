"""Curated training data out, for use in other tools: a snapshot as JSON Lines or CSV.

A row is one training example exactly as the version saw it: ``text`` (scrubbed of personal
data when the policy says so), ``label``, ``source`` (``bootstrap`` or ``feedback:<kind>``),
``feedback_id`` (the event it came from) and ``validation_block`` (the forward-chaining block
it was judged in, empty if none). Pure: bytes in, bytes out.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from typing import Any

import orjson

from learnloop.errors import ValidationError

FORMATS = ("jsonl", "csv")
COLUMNS = ("text", "label", "source", "feedback_id", "validation_block")


def snapshot_rows(snapshot_jsonl_gz: bytes) -> Iterator[dict[str, Any]]:
    for line in gzip.decompress(snapshot_jsonl_gz).splitlines():
        if line.strip():
            row = orjson.loads(line)
            yield {column: row.get(column) for column in COLUMNS}


def export_snapshot(snapshot_jsonl_gz: bytes, fmt: str) -> bytes:
    """The snapshot's rows as ``jsonl`` (one object per line) or ``csv`` (RFC 4180, header)."""
    if fmt not in FORMATS:
        raise ValidationError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}", field="format")
    rows = snapshot_rows(snapshot_jsonl_gz)
    if fmt == "jsonl":
        return b"".join(orjson.dumps(row) + b"\n" for row in rows)
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()
