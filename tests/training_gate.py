"""A fit that lasts until a test lets it go: what ``GatedRunner`` runs in the training process.
Kept apart from the test modules, so the spawned process imports nothing of pytest's."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def gated(args: tuple[Path, Callable[[Any, Any], Any], Any], report: Callable[[float, str], None]) -> Any:
    """In the training process: record this process's pid beside the gate file, wait until the
    gate file exists, then do the real work."""
    gate, fn, spec = args
    with gate.with_suffix(".pids").open("a") as pids:
        pids.write(f"{os.getpid()}\n")
    while not gate.exists():
        time.sleep(0.02)
    return fn(spec, report)


def die(spec: Any, report: Callable[[float, str], None]) -> Any:
    """In the training process: end it at once, as the kernel's OOM killer would."""
    os._exit(3)


def double(spec: int, report: Callable[[float, str], None]) -> int:
    return 2 * spec


def record_pid(path: Path) -> None:
    """In the training process: write its pid to ``path`` (what ``warm`` runs in a test)."""
    path.write_text(str(os.getpid()))


def fail_warm() -> None:
    """In the training process: a warm-up whose imports fail."""
    raise ImportError("no module named 'transformers' (a test's warm-up)")


def pid(spec: Any, report: Callable[[float, str], None]) -> int:
    return os.getpid()


def report_thrice(spec: int, report: Callable[[float, str], None]) -> int:
    for fraction, message in ((0.25, "one"), (0.5, "two"), (0.75, "three")):
        report(fraction, message)
    return spec


def raise_error(kind: str, report: Callable[[float, str], None]) -> None:
    """In the training process: fail as ``kind`` says (a library's error, a learnloop one, death)."""
    from learnloop.errors import NotSupportedError

    if kind == "learnloop":
        raise NotSupportedError("a learnloop error from the fit")
    if kind == "exit":
        os._exit(3)
    raise ValueError("no rows left (x)")


def write_until_stopped(spec: tuple[Path, Path], report: Callable[[float, str], None]) -> int:
    """In the training process: hold a SQLite write transaction most of the time (0.2 s in, a
    few ms out, as a busy writer would) until ``stop`` exists; the number of commits."""
    import sqlite3

    database, stop = spec
    conn = sqlite3.connect(database, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS trials (n INTEGER)")
    commits = 0
    while not stop.exists():
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO trials VALUES (?)", (commits,))
        time.sleep(0.2)
        conn.execute("COMMIT")
        commits += 1
        time.sleep(0.005)
    conn.close()
    return commits
