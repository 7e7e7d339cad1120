"""Pause/resume benchmark: what pausing a running retrain costs, measured on a real retrain.

Run from the repository root with the project's virtual environment::

    .venv/bin/python bench/pause_bench.py                      # 3 runs each way, SQLite, heartbeat 1 s
    .venv/bin/python bench/pause_bench.py --runs 5 --heartbeat 5 --trials 60

The retrain is the shipped yelp UCI model's (tfidf-logreg, version 1 trained first) with a
parameter search of a fixed number of Optuna trials (``--trials``, a large time budget), so that
every run does the same work in the training process (spawned, as under ``learnloop serve``).
Each run uses a fresh home and database, and its own worker (``Worker.run_once`` on a thread,
heartbeat ``--heartbeat`` seconds, the default of ``job_heartbeat_seconds`` is 5).

Straight runs time the job from claim to ``succeeded``. Paused runs pause the job ``--after``
seconds into the search (its "candidate" report), hold it paused ``--hold`` seconds, resume it, and measure:

- pause -> stopped: from ``JobService.pause`` returning to the training process's state
  being ``T`` (stopped) in /proc, and its CPU time (utime + stime) no longer increasing;
- CPU used while paused: the training process's CPU seconds over the hold (should be 0);
- resume -> running: from ``JobService.resume`` returning to the process running again and
  its CPU time increasing;
- total: the job's wall time minus the time held paused, against the straight runs' (the
  overhead of pausing and resuming on the fit itself), and the training process's CPU seconds
  for the whole retrain both ways (steadier than wall time on a shared machine).

Both are bounded by the heartbeat: the worker learns of a pause or resume at its next beat.
``uptime``'s load is printed before and after: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from learnloop.config import Settings
from learnloop.curation import split_golden
from learnloop.datasets.readers import read_labelled
from learnloop.datasets.shipped import uci_sentiment_path
from learnloop.domain import JobStatus
from learnloop.policy import Policy
from learnloop.services import Services, build_services
from learnloop.training.runner import ChildProcessRunner

TICK = os.sysconf("SC_CLK_TCK")


def proc_state(pid: int) -> tuple[str, float]:
    """(state letter, CPU seconds used) of ``pid``, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return fields[0], (int(fields[11]) + int(fields[12])) / TICK


def until(predicate: object, timeout: float = 120.0, interval: float = 0.005) -> float:
    """Poll ``predicate`` until true; the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("waited too long")
        time.sleep(interval)
    return time.monotonic()


def home_with_model(root: Path, trials: int, heartbeat: float) -> Services:
    """A home whose model "m" (yelp, version 1 trained in this process) searches ``trials``
    trials in each retrain, run in a spawned training process."""
    settings = Settings(
        home=root / "home",
        database_url=f"sqlite:///{root}/ll.db",
        isolate_training=False,  # version 1 here; the retrains get the training process below
        job_heartbeat_seconds=heartbeat,
        job_lease_seconds=30.0,
    )
    services = build_services(settings)
    data = read_labelled(uci_sentiment_path("yelp"), text_column="0", label_column="1", header=False)
    rows = list(zip(data.texts, data.labels, strict=True))
    train, golden = split_golden(rows, 0.2, 0)
    services.registry.create_model(
        name="m", labels=["0", "1"], family="tfidf-logreg", params={}, policy=Policy(), train=train, golden=golden,
        source="uci:yelp",
    )  # fmt: skip
    services.training.bootstrap("m")
    changes = {"search_families": "tfidf-logreg", "search_budget_seconds": 3600, "search_trials": trials}
    services.registry.update_policy("m", {**changes, "selection_blocks": 3}, actor="bench")
    services.training.runner = ChildProcessRunner()
    return services


def one_run(trials: int, heartbeat: float, pause_after: float | None, hold: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="pause-bench-") as tmp:
        services = home_with_model(Path(tmp), trials, heartbeat)
        runner = services.training.runner
        assert isinstance(runner, ChildProcessRunner)
        try:
            job = services.jobs.enqueue("m", "retrain", requested_by="bench")
            started = time.monotonic()
            worker = threading.Thread(target=services.worker.run_once)
            worker.start()
            figures: dict[str, float] = {}
            if pause_after is not None:
                until(lambda: runner.pids() and "candidate" in (services.jobs.get(job.id).message or ""))
                time.sleep(pause_after)
                [pid] = runner.pids()
                services.jobs.pause(job.id, actor="bench", reason="bench")
                asked = time.monotonic()
                stopped = until(lambda: proc_state(pid)[0] == "T")
                cpu_at_stop = proc_state(pid)[1]
                figures["pause_to_stopped_s"] = stopped - asked
                time.sleep(hold)
                figures["cpu_while_paused_s"] = proc_state(pid)[1] - cpu_at_stop
                services.jobs.resume(job.id, actor="bench", reason="bench")
                asked_again = time.monotonic()
                running = until(lambda: proc_state(pid)[0] != "T" and proc_state(pid)[1] > cpu_at_stop)
                figures["resume_to_running_s"] = running - asked_again
                figures["held_s"] = asked_again - asked
            worker.join(600)
            [pid] = runner.pids()
            figures["fit_cpu_s"] = proc_state(pid)[1]  # the training process did this retrain's work only
            done = services.jobs.get(job.id)
            if done.status != JobStatus.SUCCEEDED:
                raise RuntimeError(f"the retrain did not succeed: {done}")
            total = time.monotonic() - started
            figures["job_s"] = total
            figures["job_minus_hold_s"] = total - figures.get("held_s", 0.0)
            return figures
        finally:
            runner.close()
            services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trials", type=int, default=20, help="Optuna trials of the retrain's search")
    parser.add_argument("--heartbeat", type=float, default=1.0, help="job_heartbeat_seconds")
    parser.add_argument("--after", type=float, default=2.0, help="seconds into the search to pause")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds to stay paused")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()}")
    straight = [one_run(args.trials, args.heartbeat, None, args.hold) for _ in range(args.runs)]
    paused = [one_run(args.trials, args.heartbeat, args.after, args.hold) for _ in range(args.runs)]
    print(f"load after: {os.getloadavg()}")
    print(f"retrain with a {args.trials}-trial search, heartbeat {args.heartbeat} s, {args.runs} runs each way")

    def show(name: str, values: list[float]) -> None:
        print(
            f"  {name:34s} median {statistics.median(values):7.3f} s  "
            f"min {min(values):7.3f}  max {max(values):7.3f}  ({', '.join(f'{v:.3f}' for v in values)})"
        )

    show("straight: job wall time", [r["job_s"] for r in straight])
    show("paused: job wall time minus hold", [r["job_minus_hold_s"] for r in paused])
    show("straight: training process CPU", [r["fit_cpu_s"] for r in straight])
    show("paused: training process CPU", [r["fit_cpu_s"] for r in paused])
    show("pause request -> process stopped", [r["pause_to_stopped_s"] for r in paused])
    show("CPU used while paused", [r["cpu_while_paused_s"] for r in paused])
    show("resume request -> process running", [r["resume_to_running_s"] for r in paused])
    overhead = statistics.median(r["job_minus_hold_s"] for r in paused) - statistics.median(
        r["job_s"] for r in straight
    )
    print(f"  overhead on the fit (medians, paused minus straight): {overhead:+.3f} s")


if __name__ == "__main__":
    main()
