"""The CLI's tables: a long cell wraps over lines, never cut to an ellipsis."""

from __future__ import annotations

from typing import Any

from rich import table


class Table(table.Table):
    """A rich ``Table`` whose columns wrap and fold a word too long for its column over lines: a
    verdict's deciding words, a job id, a reason are shown in full. ``no_wrap`` is ignored (a
    cell that may not wrap is cut when the terminal is narrow)."""

    def add_column(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("no_wrap", None)
        kwargs.setdefault("overflow", "fold")
        super().add_column(*args, **kwargs)
