"""A paused fit never holds the database: ``ChildProcessRunner.suspend`` stops the training
process only outside a write transaction. A search writes its trials to the model's database;
on SQLite a process stopped inside a write holds the whole file (every heartbeat, feedback
write and retrain waits, then fails "database is locked") until someone resumes it."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from conftest import wait_for
from learnloop.training.runner import ChildProcessRunner, write_locks_held
from training_gate import write_until_stopped

pytestmark = pytest.mark.timeout(120)


def state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_training_process_is_stopped_outside_its_write_transactions(tmp_path: Path) -> None:
    database, stop = tmp_path / "study.db", tmp_path / "stop"
    runner = ChildProcessRunner()
    commits: list[int] = []
    fit = threading.Thread(target=lambda: commits.append(runner.run(write_until_stopped, (database, stop))))
    fit.start()
    try:
        [pid] = wait_for(runner.pids, timeout=60, what="the training process")
        wait_for(lambda: write_locks_held([pid]), timeout=60, what="the training process to write")
        for _ in range(5):  # it holds the write lock ~97% of the time: a blind stop lands inside
            assert runner.suspend()
            assert state(pid) == "T"
            assert write_locks_held([pid]) == []
            other = sqlite3.connect(database, isolation_level=None, timeout=5)
            try:
                other.execute("BEGIN IMMEDIATE")  # this process can write while the fit is stopped
                other.execute("INSERT INTO trials VALUES (-1)")
                other.execute("COMMIT")
            finally:
                other.close()
            runner.resume()
            wait_for(lambda: write_locks_held([pid]), timeout=30, what="the training process to write again")
    finally:
        runner.resume()
        stop.touch()
        fit.join(60)
        runner.close()
    assert commits and commits[0] > 5
