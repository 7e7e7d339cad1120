"""The lines a demo prints to run learnloop from another terminal work when pasted into a
shell, whatever the home's path holds (spaces, brackets, quotes)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from learnloop.cli.common import print_how_to_run


def test_the_export_line_sets_the_home_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "my demo [1] it's" / "home"
    print_how_to_run(home, "status")
    export = next(line.strip() for line in capsys.readouterr().out.splitlines() if "export LEARNLOOP_HOME=" in line)
    shell = subprocess.run(
        ["bash", "-c", f'{export}; printf %s "$LEARNLOOP_HOME"'], capture_output=True, text=True, check=True
    )
    assert shell.stdout == str(home.resolve())
