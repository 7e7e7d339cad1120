"""The data a new model starts from: a labelled file or rows, read, checked and split.

Every problem is a ``DataError`` (or a ``ValidationError`` for an option) naming the field a
caller can fix: ``data`` (the file or the rows), ``text_column``, ``label_column``, ``format``,
``quoting``, ``golden_fraction``. Nothing here touches the database or the artifact store.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from learnloop.config import Limits
from learnloop.curation import golden_indices
from learnloop.datasets.label_names import rename_labels
from learnloop.datasets.readers import EMPTY_TEXT, MISSING_LABEL, SUPPORTED_FORMATS, Metadata, read_labelled
from learnloop.errors import DataError, ValidationError

MAX_LABEL_CHARS = 128  # the width of every stored label column
GOLDEN_FRACTION_RANGE = (0.05, 0.5)
_QUOTING = (None, "csv", "none")
Rows = list[tuple[str, str]]


@dataclass(frozen=True)
class FileSource:
    """A labelled CSV, TSV or JSON Lines file (optionally gzip-compressed)."""

    path: Path
    text_column: str = "text"
    label_column: str = "label"
    fmt: str | None = None  # default: from the file name
    header: bool = True
    quoting: str | None = None
    name: str | None = None  # how messages and the model's source name it (an upload's file name)
    label_names: Mapping[str, str] = field(default_factory=dict)  # label value -> the name the model uses

    @property
    def described(self) -> str:
        return self.name or str(self.path)


@dataclass(frozen=True)
class RowsSource:
    """(text, label) rows given directly (a JSON request body, a replay's bootstrap file)."""

    rows: Sequence[tuple[str, str]]
    name: str = "rows"
    label_names: Mapping[str, str] = field(default_factory=dict)  # label value -> the name the model uses
    metadata: Sequence[Metadata | None] = ()  # aligned with rows when given (group attributes)

    @property
    def described(self) -> str:
        return self.name


DataSource = FileSource | RowsSource


@dataclass(frozen=True)
class BootstrapData:
    """Checked data, split into training rows and the golden set; ``golden_metadata``, aligned
    with ``golden``, holds the rows' ``metadata`` column (group attributes for fairness figures
    on the golden set; empty when the data has none)."""

    train: Rows
    golden: Rows
    labels: list[str]
    rows: int  # usable rows read
    source: str
    skipped: dict[str, int] = field(default_factory=dict)  # rows left out, by reason
    golden_metadata: list[Metadata | None] = field(default_factory=list)


def check_options(source: DataSource, golden_fraction: float) -> None:
    """What can be checked before any data is read."""
    low, high = GOLDEN_FRACTION_RANGE
    if not low <= golden_fraction <= high:
        raise ValidationError(
            f"golden_fraction must be between {low} and {high}, got {golden_fraction}", field="golden_fraction"
        )
    check_file_options(source, ("text_column", "label_column"))


def check_file_options(source: DataSource, columns: tuple[str, str]) -> None:
    """A file source's format, quoting and its two columns (named ``columns`` to the user),
    checked before the file is read; rows given directly have none."""
    if isinstance(source, RowsSource):
        return
    if source.fmt is not None and source.fmt not in SUPPORTED_FORMATS:
        raise ValidationError(
            f"unknown format {source.fmt!r}; supported: {', '.join(SUPPORTED_FORMATS)}", field="format"
        )
    if source.quoting not in _QUOTING:
        raise ValidationError(f"unknown quoting {source.quoting!r}; use csv or none", field="quoting")
    first, second = columns
    for name, value in ((first, source.text_column), (second, source.label_column)):
        if not value:
            raise ValidationError(f"{name} must name a column", field=name)
    if source.text_column == source.label_column:
        raise ValidationError(f"{first} and {second} must be different columns", field=second)


def prepare(
    source: DataSource, *, golden_fraction: float, seed: int, max_labels: int, limits: Limits | None = None
) -> BootstrapData:
    """Read ``source``, check it can make a model, and hold out the golden set (with each
    golden row's metadata, bounded as a prediction's by ``limits``)."""
    rows, metadata, skipped = _read(source)
    labels = _check_labels(rows, source, max_labels)
    _check_metadata(metadata, limits or Limits())
    train_at, golden_at = golden_indices(rows, golden_fraction, seed)
    train, golden = [rows[i] for i in train_at], [rows[i] for i in golden_at]
    _check_split(train, golden, labels, golden_fraction)
    golden_metadata = [metadata[i] for i in golden_at] if metadata else []
    return BootstrapData(train, golden, labels, len(rows), source.described, skipped, golden_metadata)


def _check_metadata(metadata: list[Metadata | None], limits: Limits) -> None:
    """A row's metadata is bounded as a prediction's is: keys, key length, JSON size."""
    for i, meta in enumerate(metadata):
        if not meta:
            continue
        longest = max(len(key) for key in meta)
        size = len(json.dumps(meta).encode())
        if len(meta) > limits.max_metadata_keys or longest > limits.max_metadata_key_chars or not all(meta):
            raise DataError(
                f"row {i + 1}: metadata takes at most {limits.max_metadata_keys} keys of 1 to "
                f"{limits.max_metadata_key_chars} characters",
                field="data",
            )
        if size > limits.max_metadata_bytes:
            raise DataError(f"row {i + 1}: metadata exceeds {limits.max_metadata_bytes} bytes of JSON", field="data")
        if any(isinstance(v, float) and not math.isfinite(v) for v in meta.values()):
            raise DataError(f"row {i + 1}: metadata holds NaN or Infinity, which JSON cannot carry", field="data")


def _read(source: DataSource) -> tuple[Rows, list[Metadata | None], dict[str, int]]:
    if isinstance(source, RowsSource):
        if source.metadata and len(source.metadata) != len(source.rows):
            raise DataError(f"{len(source.rows)} rows but {len(source.metadata)} metadata", field="data")
        kept, skipped = _clean_rows(source.rows)
        rows = [source.rows[i] for i in kept]
        labels = rename_labels([label.strip() for _, label in rows], source.label_names, source.described)
        texts = [text.strip() for text, _ in rows]
        metadata = [source.metadata[i] for i in kept] if source.metadata else []
        return list(zip(texts, labels, strict=True)), metadata, skipped
    try:
        data = read_labelled(
            source.path,
            text_column=source.text_column,
            label_column=source.label_column,
            fmt=source.fmt,
            header=source.header,
            quoting=source.quoting,
        )
    except DataError as exc:
        # The reader names the missing column itself; callers fix the option that names it.
        where = {source.text_column: "text_column", source.label_column: "label_column"}.get(exc.field or "", "data")
        message = exc.message.replace(str(source.path), source.described)
        raise DataError(message, field=where) from None
    labels = rename_labels(data.labels, source.label_names, source.described)
    return list(zip(data.texts, labels, strict=True)), data.metadata, data.skipped


def _clean_rows(given: Sequence[tuple[str, str]]) -> tuple[list[int], dict[str, int]]:
    """The rows the file reader would keep, by index (stripped, each has a text and a label)."""
    rows: list[int] = []
    skipped: Counter[str] = Counter()
    for i, (text, label) in enumerate(given):
        if not text.strip():
            skipped[EMPTY_TEXT] += 1
        elif not label.strip():
            skipped[MISSING_LABEL] += 1
        else:
            rows.append(i)
    if not rows:
        detail = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
        raise DataError("no usable rows" + (f" (skipped: {detail})" if detail else ""), field="data")
    return rows, dict(skipped)


def _check_labels(rows: Rows, source: DataSource, max_labels: int) -> list[str]:
    column = source.label_column if isinstance(source, FileSource) else "label"
    where = "label_column" if isinstance(source, FileSource) else "data"
    labels = sorted({label for _, label in rows})
    if len(labels) < 2:
        raise DataError(
            f"a model needs at least two labels; the {column!r} column of {source.described} holds only "
            f"{labels[0]!r} ({len(rows)} row{'s' if len(rows) != 1 else ''})",
            field=where,
        )
    if len(labels) > max_labels:
        raise DataError(
            f"the {column!r} column of {source.described} has {len(labels):,} distinct values; a model takes at "
            f"most {max_labels:,} labels (is it the label column?)",
            field=where,
        )
    too_long = next((label for label in labels if len(label) > MAX_LABEL_CHARS), None)
    if too_long is not None:
        raise DataError(
            f"label {too_long[:40]!r}... is {len(too_long)} characters; labels are at most {MAX_LABEL_CHARS}",
            field=where,
        )
    return labels


def _check_split(train: Rows, golden: Rows, labels: list[str], fraction: float) -> None:
    """Every label must be learnt from and judged on: at least one distinct text on each side."""
    in_train, in_golden = Counter(lab for _, lab in train), Counter(lab for _, lab in golden)
    short = [label for label in labels if not in_train[label] or not in_golden[label]]
    if not short:
        return
    shown = ", ".join(repr(label) for label in short[:5]) + (f" and {len(short) - 5} more" if len(short) > 5 else "")
    raise DataError(
        f"too few rows for {len(short)} label{'s' if len(short) > 1 else ''} ({shown}): with golden_fraction "
        f"{fraction}, each label needs at least {rows_per_label(fraction)} distinct texts, one or more held out "
        "for the golden set and the rest to train on",
        field="data",
    )


def rows_per_label(fraction: float) -> int:
    """The fewest distinct texts of a label that leave one in the golden set and one to train on
    (``split_golden`` holds out ``round(n * fraction)`` of each label)."""
    n = 2
    while not 1 <= round(n * fraction) < n:
        n += 1
    return n
