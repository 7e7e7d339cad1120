"""Read labelled text data (text + label per row) from CSV, TSV or JSON Lines files.

Any of them may be gzip-compressed; compression is recognised by the gzip magic bytes, so a
``.gz`` suffix is not required. Rows whose text is empty, or whose label is empty or absent, are
skipped and counted in :attr:`LabelledData.skipped` by reason. Everything that makes a file
unusable raises :class:`~learnloop.errors.DataError` with the file, and where it helps, the line.

A column (or JSON key) named ``metadata`` carries each row's attributes (group fields for
fairness figures, never a feature): a flat JSON object of strings, numbers, booleans and nulls
(in CSV and TSV, its JSON text; a headerless file has none); empty or absent, none.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import json
import math
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from learnloop.errors import DataError

SUPPORTED_FORMATS: tuple[str, ...] = ("csv", "tsv", "jsonl")

_FORMAT_BY_SUFFIX: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonlines": "jsonl",
}
_QUOTING_MODES: tuple[str, ...] = ("csv", "none")
_DEFAULT_QUOTING: dict[str, str] = {"csv": "csv", "tsv": "none"}
_GZIP_MAGIC = b"\x1f\x8b"

Metadata = dict[str, str | int | float | bool | None]
_Rows = tuple[list[str], list[str], list[Metadata | None], dict[str, int]]  # texts, labels, metadata, skipped

METADATA_COLUMN = "metadata"

EMPTY_TEXT = "empty_text"
MISSING_LABEL = "missing_label"


@dataclass(frozen=True)
class LabelledData:
    """Texts and their labels, index-aligned, plus how many rows were skipped and why;
    ``metadata`` is index-aligned too when the file has a ``metadata`` column, else empty."""

    texts: list[str]
    labels: list[str]
    skipped: dict[str, int] = field(default_factory=dict)
    metadata: list[Metadata | None] = field(default_factory=list)


def detect_format(path: Path) -> str:
    """``"csv"``, ``"tsv"`` or ``"jsonl"`` from the file name; a trailing ``.gz`` is ignored."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    suffix = suffixes[-1] if suffixes else ""
    try:
        return _FORMAT_BY_SUFFIX[suffix]
    except KeyError:
        known = ", ".join(sorted(_FORMAT_BY_SUFFIX))
        raise DataError(
            f"cannot tell the format of {path} from its name (suffix {suffix or 'none'!r}); "
            f"supported formats: {', '.join(SUPPORTED_FORMATS)} (suffixes {known}, optionally "
            "followed by .gz); pass the format explicitly"
        ) from None


def read_labelled(
    path: Path,
    *,
    text_column: str,
    label_column: str,
    fmt: str | None = None,
    header: bool = True,
    quoting: str | None = None,
    encoding: str = "utf-8-sig",
) -> LabelledData:
    """Read ``path`` into texts and labels.

    ``header=False`` names the columns by 0-based position: ``"0"``, ``"1"``, ...
    ``quoting`` applies to CSV and TSV: ``"csv"`` (RFC 4180 quotes, the CSV default) or
    ``"none"`` (quotes are literal characters, the TSV default).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if not path.is_file():
        raise DataError(f"not a regular file: {path}")
    fmt = detect_format(path) if fmt is None else fmt
    if fmt not in SUPPORTED_FORMATS:
        raise DataError(f"unknown format {fmt!r}; supported formats: {', '.join(SUPPORTED_FORMATS)}")
    try:
        codec_name = codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r}") from None

    try:
        with _open_text(path, encoding) as stream:
            if fmt == "jsonl":
                if quoting is not None:
                    raise DataError("quoting applies to csv and tsv files, not jsonl")
                rows = _read_jsonl(stream, path, text_column, label_column)
            else:
                rows = _read_delimited(stream, path, fmt, text_column, label_column, header, quoting)
    except UnicodeDecodeError:
        line = _first_undecodable_line(path, encoding)
        shown = "UTF-8" if codec_name in ("utf-8", "utf-8-sig") else encoding
        raise DataError(
            f"{path}, line {line}: not valid {shown} text; pass the file's encoding if it is not UTF-8"
        ) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc

    texts, labels, metadata, skipped = rows
    if not texts:
        detail = f" (skipped: {_describe(skipped)})" if skipped else ""
        raise DataError(f"no usable rows in {path}{detail}")
    return LabelledData(texts=texts, labels=labels, skipped=skipped, metadata=metadata)


def _read_delimited(
    stream: Iterable[str],
    path: Path,
    fmt: str,
    text_column: str,
    label_column: str,
    header: bool,
    quoting: str | None,
) -> _Rows:
    quoting = _DEFAULT_QUOTING[fmt] if quoting is None else quoting
    if quoting not in _QUOTING_MODES:
        raise DataError(f"unknown quoting {quoting!r}; use one of: {', '.join(_QUOTING_MODES)}")
    # strict: an unclosed quote is an error instead of silently swallowing the rest of the file.
    reader = csv.reader(
        stream,
        delimiter="," if fmt == "csv" else "\t",
        quoting=csv.QUOTE_MINIMAL if quoting == "csv" else csv.QUOTE_NONE,
        strict=quoting == "csv",
    )
    try:
        return _collect_delimited(reader, path, text_column, label_column, header)
    except csv.Error as exc:
        hint = " (if quotes are literal characters in this file, pass quoting='none')"
        raise DataError(f"{path}, line {reader.line_num}: {exc}{hint if quoting == 'csv' else ''}") from exc


def _collect_delimited(
    records: Iterator[list[str]],
    path: Path,
    text_column: str,
    label_column: str,
    header: bool,
) -> _Rows:
    first = next(records, None)
    if first is None:
        raise DataError(f"{path} is empty")
    if header:
        columns = [name.strip() for name in first]
        pending: list[list[str]] = []
    else:
        columns = [str(i) for i in range(len(first))]
        pending = [first]
    text_index = _column_index(columns, text_column, path)
    label_index = _column_index(columns, label_column, path)
    meta_index = columns.index(METADATA_COLUMN) if header and METADATA_COLUMN in columns else None

    texts: list[str] = []
    labels: list[str] = []
    metadata: list[Metadata | None] = []
    skipped: Counter[str] = Counter()
    for record in itertools.chain(pending, records):
        if not record:  # a blank line
            continue
        text = record[text_index].strip() if text_index < len(record) else ""
        label = record[label_index].strip() if label_index < len(record) else ""
        reason = _skip_reason(text, label)
        if reason:
            skipped[reason] += 1
            continue
        texts.append(text)
        labels.append(label)
        if meta_index is not None:
            raw = record[meta_index].strip() if meta_index < len(record) else ""
            metadata.append(_metadata_text(raw, f"{path}, line {getattr(records, 'line_num', '?')}"))
    return texts, labels, metadata, dict(skipped)


def _column_index(columns: list[str], name: str, path: Path) -> int:
    try:
        return columns.index(name)
    except ValueError:
        found = ", ".join(repr(c) for c in columns)
        raise DataError(f"column {name!r} not found in {path}; columns found: {found}", field=name) from None


def _read_jsonl(stream: Iterable[str], path: Path, text_key: str, label_key: str) -> _Rows:
    texts: list[str] = []
    labels: list[str] = []
    metadata: list[Metadata | None] = []
    skipped: Counter[str] = Counter()
    keys_seen: dict[str, None] = {}  # insertion-ordered set
    has_text_key = has_label_key = False
    for line_no, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {line_no}: invalid JSON: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}, line {line_no}: expected a JSON object, got {type(obj).__name__}")
        keys_seen.update(dict.fromkeys(obj))
        has_text_key = has_text_key or text_key in obj
        has_label_key = has_label_key or label_key in obj
        text = _json_text(obj.get(text_key), path, line_no, text_key)
        label = _json_label(obj.get(label_key), path, line_no, label_key)
        reason = _skip_reason(text, label)
        if reason:
            skipped[reason] += 1
            continue
        texts.append(text)
        labels.append(label)
        metadata.append(_metadata(obj.get(METADATA_COLUMN), f"{path}, line {line_no}"))
    if keys_seen:
        found = ", ".join(repr(k) for k in keys_seen)
        for key, present in ((text_key, has_text_key), (label_key, has_label_key)):
            if not present:
                raise DataError(
                    f"field {key!r} not found in any object of {path}; fields found: {found}",
                    field=key,
                )
    return texts, labels, metadata if METADATA_COLUMN in keys_seen else [], dict(skipped)


def _metadata_text(raw: str, where: str) -> Metadata | None:
    """A CSV or TSV row's metadata cell: empty, or the JSON text of a flat object."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: metadata is not JSON: {exc.msg}", field="data") from None
    return _metadata(value, where)


def _metadata(value: object, where: str) -> Metadata | None:
    """A row's metadata: None, or a flat object of scalars (NaN and Infinity refused)."""
    if value is None or value == {}:
        return None
    if isinstance(value, dict) and all(_flat_value(v) for v in value.values()):
        return {str(k): v for k, v in value.items()}
    raise DataError(f"{where}: metadata must be a JSON object of strings, numbers, booleans or nulls", field="data")


def _flat_value(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)


def _json_text(value: object, path: Path, line_no: int, key: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    raise DataError(
        f"{path}, line {line_no}: field {key!r} must be a string, got {type(value).__name__}",
        field=key,
    )


def _json_label(value: object, path: Path, line_no: int, key: str) -> str:
    """JSON label -> str: 1 -> "1", 1.0 -> "1", true -> "true", " pos " -> "pos"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, str):
        return value.strip()
    raise DataError(
        f"{path}, line {line_no}: label field {key!r} must be a string, number or boolean, got {type(value).__name__}",
        field=key,
    )


def _skip_reason(text: str, label: str) -> str | None:
    if not text:
        return EMPTY_TEXT
    if not label:
        return MISSING_LABEL
    return None


def _describe(skipped: dict[str, int]) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items()))


def _open_binary(path: Path) -> gzip.GzipFile | io.BufferedReader:
    with path.open("rb") as probe:
        compressed = probe.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else path.open("rb")


def _open_text(path: Path, encoding: str) -> io.TextIOWrapper:
    # newline="" keeps "\r\n" inside quoted CSV fields and splits lines only on \n, \r, \r\n
    # (not on U+0085 or U+2028, which occur inside sentences of real data).
    return io.TextIOWrapper(_open_binary(path), encoding=encoding, newline="")


def _first_undecodable_line(path: Path, encoding: str) -> int:
    """1-based number of the first line that cannot be decoded."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line_no = 1
    with _open_binary(path) as raw:
        for chunk in raw:
            try:
                line_no += decoder.decode(chunk).count("\n")
            except UnicodeDecodeError:
                return line_no
    return line_no
