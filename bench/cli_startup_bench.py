"""How long a ``learnloop`` command takes to start: the CLI run as a subprocess, as a user (and
the end-to-end tests) run it. Prints the figures; asserts nothing.

    .venv/bin/python bench/cli_startup_bench.py [--runs 5] [--src PATH] [--baseline-src PATH] [--no-serve]

``--src`` measures another source tree; ``--baseline-src`` a second one (e.g. an older commit's
``src``, from ``git archive``), run alternately with the first so that a busy machine slows
both alike. Each command runs once to warm the bytecode cache, then ``--runs`` times; the table
gives the median and the minimum of the wall time and of the CPU time (user + system) of the
process. CPU time moves less than wall time when other processes share the cores.

Commands: ``--help`` and ``--version``; ``status`` and ``versions`` on a home with one small
model (they open the services), ``status`` again without ``--home`` and ``--model`` (the home
from ``LEARNLOOP_HOME``, the model looked up: its only one), ``models`` (the list), ``jobs list``
and ``events``; ``predict`` (loads the model, logs the answer; it writes); ``init`` on the
1,000 shipped Yelp sentences (a fresh home each run: services, a fit of version 1, the gate);
``serve`` from start until ``/health`` answers (the app, the model
loaded; its CPU time runs on until it has exited after SIGTERM). It also lists the heavy
libraries a bare ``learnloop --help`` imports.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "scipy", "sklearn", "pandas", "sqlalchemy", "alembic", "httpx", "pydantic", "fastapi", "uvicorn")
HEAVY += ("jinja2", "matplotlib", "torch", "transformers")


def environment(src: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNLOOP_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached after the first run
    env.update({"PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    return env


def timed(args: list[str], env: dict[str, str], *, until: Callable[[], bool] | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of one run; with ``until``, the run is stopped (SIGTERM) once it holds."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    wall = None
    if until is not None:
        deadline = started + 60
        while not until():
            if proc.poll() is not None or time.perf_counter() > deadline:
                proc.kill()
                raise SystemExit(f"{' '.join(args[2:])} did not come up: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.01)
        wall = time.perf_counter() - started
        proc.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = wall if wall is not None else time.perf_counter() - started
    err = proc.stderr.read().decode() if proc.stderr else ""
    if until is None and proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[2:])} exited {proc.returncode}: {err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    return check


def heavy_modules(env: dict[str, str]) -> list[str]:
    script = (
        "import sys; sys.argv = ['learnloop', '--help']\n"
        "from learnloop.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    lines = proc.stderr.strip().splitlines()  # the last line names them; none: an empty line
    return [m for m in lines[-1].split(",") if m] if lines else []


def command_set(src: Path, work: Path, data: Path, serve: bool) -> dict[str, Callable[[], tuple[float, float]]]:
    """The timed commands against one source tree, with a home of its own."""
    env = environment(src)
    learnloop = [sys.executable, "-m", "learnloop"]
    tree = work / f"tree-{len(list(work.glob('tree-*')))}"
    home = tree / "home"
    counter = iter(range(10**6))
    labelled = ["--data", str(data), "--no-header", "--text-column", "0", "--label-column", "1"]

    def init(target: Path) -> tuple[float, float]:
        return timed([*learnloop, "init", "--home", str(target), "--model", "m", *labelled], env)

    init(home)
    at_home = ["--home", str(home)]
    defaulted = {**env, "LEARNLOOP_HOME": str(home)}
    commands: dict[str, Callable[[], tuple[float, float]]] = {
        "--help": lambda: timed([*learnloop, "--help"], env),
        "--version": lambda: timed([*learnloop, "--version"], env),
        "status": lambda: timed([*learnloop, "status", *at_home, "-m", "m"], env),
        "status (defaults)": lambda: timed([*learnloop, "status"], defaulted),
        "versions": lambda: timed([*learnloop, "versions", *at_home, "-m", "m"], env),
        "models": lambda: timed([*learnloop, "models", *at_home], env),
        "jobs list": lambda: timed([*learnloop, "jobs", "list", *at_home], env),
        "events": lambda: timed([*learnloop, "events", *at_home, "-m", "m"], env),
        "predict": lambda: timed([*learnloop, "predict", *at_home, "-m", "m", "Great food"], env),
        "init": lambda: init(tree / f"home-{next(counter)}"),
    }
    if serve:

        def serve_once() -> tuple[float, float]:
            port = free_port()
            args = [*learnloop, "serve", "--home", str(home), "--port", str(port), "--log-level", "warning"]
            return timed(args, env, until=healthy(f"http://127.0.0.1:{port}/health"))

        commands["serve"] = serve_once
    return commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--src", type=Path, default=REPO / "src", help="the source tree to measure")
    parser.add_argument("--baseline-src", type=Path, help="another tree, run alternately with --src to compare")
    parser.add_argument("--no-serve", action="store_true", help="leave out learnloop serve")
    opts = parser.parse_args()
    trees = {"": opts.src.resolve()} if opts.baseline_src is None else {
        "baseline ": opts.baseline_src.resolve(),
        "": opts.src.resolve(),
    }  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="cli-startup-"))
    try:
        data = work / "yelp.txt"
        shutil.copy(REPO / "src/learnloop/datasets/uci_sentiment/yelp_labelled.txt", data)
        commands = {label: command_set(src, work, data, not opts.no_serve) for label, src in trees.items()}
        for label, src in trees.items():
            print(f"{label or 'measured '}source: {src}")
        print(f"{opts.runs} runs after a warm-up, alternating between trees; seconds")
        print(f"{'command':<26} {'wall median':>12} {'wall min':>9} {'cpu median':>11} {'cpu min':>8}")
        for name in commands[""]:
            results: dict[str, list[tuple[float, float]]] = {label: [] for label in trees}
            for label in trees:
                commands[label][name]()
            for _ in range(opts.runs):
                for label in trees:
                    results[label].append(commands[label][name]())
            for label, runs in results.items():
                walls, cpus = zip(*runs, strict=True)
                print(
                    f"{label + name:<26} {statistics.median(walls):>12.2f} {min(walls):>9.2f} "
                    f"{statistics.median(cpus):>11.2f} {min(cpus):>8.2f}"
                )
        for label, src in trees.items():
            loaded = heavy_modules(environment(src))
            print(f"{label}learnloop --help imports: {', '.join(loaded) or 'none of ' + ', '.join(HEAVY)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
