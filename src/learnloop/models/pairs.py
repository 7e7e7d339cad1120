"""The prompt/response rows a generative model's first adapter is fitted on, read and checked.

A file (CSV, TSV or JSON Lines, as for a classifier) names its prompt and response columns in
a ``FileSource``'s ``text_column`` and ``label_column`` (``prompt`` and ``response`` by
default: ``PROMPT_COLUMN``, ``RESPONSE_COLUMN``); JSON rows come as a ``RowsSource`` of
(prompt, response). Rows with an empty prompt or response, or longer than the model policy's
generation limits, are skipped and counted by reason; fewer than ``MIN_SFT_ROWS`` usable rows
is a ``DataError``. Errors name the field a caller can fix: ``data``, ``prompt_column``,
``response_column``, ``format``, ``quoting``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from learnloop.datasets.readers import EMPTY_TEXT, MISSING_LABEL, read_labelled
from learnloop.errors import DataError
from learnloop.models.data import BootstrapData, DataSource, Rows, RowsSource, check_file_options
from learnloop.policy import GenerationPolicy

PROMPT_COLUMN = "prompt"
RESPONSE_COLUMN = "response"
MIN_SFT_ROWS = 8  # fewer teach an adapter nothing but noise
EMPTY_PROMPT, EMPTY_RESPONSE = "empty_prompt", "empty_response"
PROMPT_TOO_LONG, RESPONSE_TOO_LONG = "prompt_too_long", "response_too_long"
_RENAMED = {EMPTY_TEXT: EMPTY_PROMPT, MISSING_LABEL: EMPTY_RESPONSE}


def check_pair_options(source: DataSource) -> None:
    """What can be checked of a prompt/response source before any data is read."""
    check_file_options(source, ("prompt_column", "response_column"))


def prepare_pairs(source: DataSource, limits: GenerationPolicy) -> BootstrapData:
    """Read ``source`` into (prompt, response) rows, all of them to train on (``golden`` is
    empty: a first adapter has no champion to be judged against)."""
    given, skipped = _read(source)
    rows: Rows = []
    for prompt, response in given:
        if len(prompt) > limits.max_prompt_chars:
            skipped[PROMPT_TOO_LONG] += 1
        elif len(response) > limits.max_response_chars:
            skipped[RESPONSE_TOO_LONG] += 1
        else:
            rows.append((prompt, response))
    if len(rows) < MIN_SFT_ROWS:
        detail = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
        raise DataError(
            f"an adapter is fitted on at least {MIN_SFT_ROWS} prompt/response rows; {source.described} has "
            f"{len(rows)} usable" + (f" (skipped: {detail})" if detail else ""),
            field="data",
        )
    return BootstrapData(
        train=rows, golden=[], labels=[], rows=len(rows), source=source.described, skipped=dict(skipped)
    )


def _read(source: DataSource) -> tuple[Rows, Counter[str]]:
    if isinstance(source, RowsSource):
        return _clean(source.rows)
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
        where = {source.text_column: "prompt_column", source.label_column: "response_column"}.get(
            exc.field or "", "data"
        )
        message = exc.message.replace(str(source.path), source.described)
        for old, new in _RENAMED.items():
            message = message.replace(old, new)
        raise DataError(message, field=where) from None
    skipped = Counter({_RENAMED.get(reason, reason): n for reason, n in data.skipped.items()})
    return list(zip(data.texts, data.labels, strict=True)), skipped


def _clean(given: Sequence[tuple[str, str]]) -> tuple[Rows, Counter[str]]:
    rows: Rows = []
    skipped: Counter[str] = Counter()
    for prompt, response in given:
        prompt, response = prompt.strip(), response.strip()
        if not prompt:
            skipped[EMPTY_PROMPT] += 1
        elif not response:
            skipped[EMPTY_RESPONSE] += 1
        else:
            rows.append((prompt, response))
    return rows, skipped
