"""The training process dying (killed, out of memory) fails the fit it ran, never the ones after."""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool

import pytest

from learnloop.training.runner import ChildProcessRunner
from training_gate import die, double

pytestmark = pytest.mark.timeout(120)


def test_a_fit_after_the_training_process_died_runs_in_a_fresh_one() -> None:
    runner = ChildProcessRunner()
    try:
        with pytest.raises(BrokenProcessPool):
            runner.run(die, None)
        assert runner.run(double, 21) == 42
    finally:
        runner.close()
