"""The CLI as a user runs it (real subprocesses): a data problem is one line on stderr and exit 1,
never a traceback, and leaves nothing behind; a command on a home that does not exist says so
and creates none; ``learnloop delete`` needs ``--yes``."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli, uci_rows

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROWS = uci_rows("yelp")[:300]


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "label")) -> Path:
    with path.open("w", newline="") as out:
        csv.writer(out).writerows([header, *rows])
    return path


def one_error_line(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def init(home: Path, data: Path, *extra: str, model: str = "m") -> subprocess.CompletedProcess[str]:
    return run_cli(
        "init", "--home", home, "--model", model, "--data", data, "--text-column", "text", "--label-column", "label",
        *extra, check=False,
    )  # fmt: skip


def test_init_with_bad_data_prints_one_line_and_creates_no_home(tmp_path: Path) -> None:
    """A few kinds through the real command (every kind: ``tests/integration/test_model_lifecycle.py``)."""
    home = tmp_path / "home"
    cases = [
        (write_csv(tmp_path / "one.csv", [("good food", "1")]), (), "two labels"),
        (write_csv(tmp_path / "col.csv", ROWS, ("review", "label")), (), "column 'text' not found"),
        (write_csv(tmp_path / "ids.csv", [(f"text {i}", str(i)) for i in range(10_000)]), (), "10,000 distinct"),
        (write_csv(tmp_path / "chars.csv", [(c, "ab"[i % 2]) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")]),
         (), "empty vocabulary"),
        (tmp_path / "missing.csv", (), "file not found"),
        (tmp_path / "missing.csv", ("--family", "bert"), "unknown model family 'bert'"),
    ]  # fmt: skip
    for data, extra, words in cases:
        one_error_line(init(home, data, *extra), words)
        assert not home.exists(), f"{data.name} {extra}: a failed init left {home}"
    plain = tmp_path / "plain"  # a folder of the user's, not a home yet
    plain.mkdir()
    (plain / "notes.txt").write_text("mine")
    one_error_line(init(plain, cases[0][0]), "two labels")
    assert [p.name for p in plain.iterdir()] == ["notes.txt"]


def test_init_refuses_a_taken_name_and_keeps_the_existing_home(tmp_path: Path) -> None:
    home, data = tmp_path / "home", write_csv(tmp_path / "reviews.csv", ROWS)
    created = init(home, data, "--param", "C=2.0")
    assert created.returncode == 0, created.stderr
    assert "version 1 is champion" in created.stdout and "read 300 examples" in created.stdout
    one_error_line(init(home, data), "model 'm' already exists")
    assert "version" in run_cli("versions", "--home", home, "--model", "m").stdout


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["versions"],
        ["events"],
        ["drift"],
        ["ask"],
        ["export", "--out", "out.csv"],
        ["delete", "--yes"],
    ],
    ids=lambda c: c[0],
)
def test_a_command_on_a_mistyped_home_says_so_and_creates_nothing(tmp_path: Path, command: list[str]) -> None:
    typo = tmp_path / "hmoe"
    proc = run_cli(*command, "--home", typo, "--model", "m", check=False, cwd=tmp_path)
    one_error_line(proc, f"no learnloop home at {typo}", "learnloop init")
    assert not typo.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_delete_needs_yes_then_removes_the_model(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert init(home, write_csv(tmp_path / "reviews.csv", ROWS)).returncode == 0
    one_error_line(run_cli("delete", "--home", home, "--model", "m", check=False), "--yes")
    assert "champion" in run_cli("status", "--home", home, "--model", "m").stdout

    out = run_cli("delete", "--home", home, "--model", "m", "--yes", "--reason", "cleanup").stdout
    assert "model 'm' deleted: 1 versions" in out
    one_error_line(run_cli("status", "--home", home, "--model", "m", check=False), "model 'm' not found")
    assert not [p for p in (home / "artifacts").rglob("*") if p.is_file()]
    assert init(home, write_csv(tmp_path / "again.csv", ROWS)).returncode == 0  # the name is free again


def test_an_unwritable_output_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert init(home, write_csv(tmp_path / "reviews.csv", ROWS)).returncode == 0
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    proc = run_cli("export", "--home", home, "--model", "m", "--out", blocker / "train.csv", check=False)
    one_error_line(proc, "cannot write")
