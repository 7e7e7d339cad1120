"""The training process: started ahead of the first fit (``warm``); its death (killed, out of
memory) fails the fit it ran, never the ones after."""

from __future__ import annotations

import logging
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path

import pytest

from learnloop.training.runner import ChildProcessRunner
from training_gate import die, double, fail_warm, pid, record_pid

pytestmark = pytest.mark.timeout(120)


def test_a_fit_after_the_training_process_died_runs_in_a_fresh_one() -> None:
    runner = ChildProcessRunner()
    try:
        with pytest.raises(BrokenProcessPool):
            runner.run(die, None)
        assert runner.run(double, 21) == 42
    finally:
        runner.close()


def test_warm_starts_the_training_process_the_first_fit_then_runs_in(tmp_path: Path) -> None:
    runner = ChildProcessRunner()
    try:
        runner.warm(partial(record_pid, tmp_path / "warm.pid"))
        assert runner.run(pid, None) == int((tmp_path / "warm.pid").read_text())
    finally:
        runner.close()


def test_a_failed_warm_up_is_logged_and_the_next_fit_still_runs(caplog: pytest.LogCaptureFixture) -> None:
    runner = ChildProcessRunner()
    try:
        with caplog.at_level(logging.WARNING, logger="learnloop.training.runner"):
            runner.warm(fail_warm)
            assert runner.run(double, 4) == 8  # queued behind the warm-up: it has ended by now
        assert any("warming the training process failed" in r.getMessage() for r in caplog.records)
    finally:
        runner.close()
