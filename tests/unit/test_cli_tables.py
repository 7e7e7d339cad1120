"""The CLI's tables wrap a long cell over lines and never cut it: every character of a
verdict's reason and of an id is printed, however narrow the terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from learnloop.cli.tables import Table

ROW = (
    "2026-12-05 17:11",
    "rejected: recent feedback NOT shown better (McNemar p=0.75, n=41)",
    "01a24730-7b7f-7000-a7b9",
)
BORDERS = set("│┃┏┓┗┛┡┩└┘━─┳┻╇┴┬┼ \n")


def printed_characters(width: int) -> str:
    out = io.StringIO()
    table = Table()
    for column in ("created", "reason", "job"):
        table.add_column(column, no_wrap=True)  # ignored: a cell that may not wrap is cut
    table.add_row(*ROW)
    Console(file=out, width=width, color_system=None).print(table)
    text = out.getvalue()
    assert "…" not in text
    return "".join(sorted(ch for ch in text if ch not in BORDERS))


@pytest.mark.parametrize("width", [30, 50, 200])
def test_a_narrow_terminal_folds_cells_and_cuts_nothing(width: int) -> None:
    everything = "".join(sorted(ch for ch in "createdreasonjob" + "".join(ROW) if ch not in BORDERS))
    assert printed_characters(width) == everything
