"""Ray runner benchmark: what handing a small retrain's fit to Ray costs against the child process.

Run from the repository root with the project's virtual environment (and ``learnloop[ray]``)::

    .venv/bin/python bench/ray_runner_bench.py               # 5 retrains each way, SQLite
    .venv/bin/python bench/ray_runner_bench.py --runs 10 --num-cpus 1

The bench starts a one-node Ray cluster (``ray start --head --block`` on 127.0.0.1, ``--num-cpus``
CPUs) and stops it at the end. The retrain is the shipped yelp UCI model's (tfidf-logreg, 800
training rows, version 1 trained in this process), ``TrainingService.retrain`` as the worker runs
it, ``--runs`` times with each runner: ``ChildProcessRunner`` (a spawned child, what ``learnloop
worker`` uses by default) and ``RayRunner`` (a Ray task on the cluster). Each runner's first
retrain is reported apart (cold: the child process is spawned and imports the ML stack; Ray is
connected to, its report actor and a worker process for the task start and import it); the rest
are warm (the runner kept, as a long-running worker keeps it).

For each retrain: the wall seconds of the whole call, the fit's own wall seconds as measured
where it ran (``cost.wall_seconds``), and the difference (what the runner adds: handing the spec
over, scheduling, relaying progress, returning the result). ``uptime``'s load is printed before
and after: the machine may be shared.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from learnloop.config import Settings
from learnloop.curation import split_golden
from learnloop.datasets.readers import read_labelled
from learnloop.datasets.shipped import uci_sentiment_path
from learnloop.policy import Policy
from learnloop.services import Services, build_services
from learnloop.training.ray_runner import RayRunner
from learnloop.training.runner import ChildProcessRunner, TrainingRunner


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def ray_cluster(num_cpus: int) -> Iterator[str]:
    """A one-node Ray cluster on 127.0.0.1; its processes (one session) are ended with it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ray = str(Path(sys.executable).parent / "ray")
    head = subprocess.Popen(
        [
            *(ray, "start", "--head", "--block", "--port", str(port), "--num-cpus", str(num_cpus)),
            *("--node-ip-address", "127.0.0.1", "--include-dashboard", "false", "--disable-usage-stats"),
            *("--temp-dir", tempfile.mkdtemp(prefix="ll-ray-")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            if time.monotonic() > deadline:
                raise TimeoutError("Ray's GCS did not listen within 90 s")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)


def home_with_model(root: Path) -> Services:
    settings = Settings(home=root / "home", database_url=f"sqlite:///{root}/ll.db", isolate_training=False)
    services = build_services(settings)
    data = read_labelled(uci_sentiment_path("yelp"), text_column="0", label_column="1", header=False)
    train, golden = split_golden(list(zip(data.texts, data.labels, strict=True)), 0.2, 0)
    services.registry.create_model(
        name="m", labels=["0", "1"], family="tfidf-logreg", params={}, policy=Policy(), train=train, golden=golden,
        source="uci:yelp",
    )  # fmt: skip
    services.training.bootstrap("m")
    return services


def timed_retrains(services: Services, runner: TrainingRunner, runs: int) -> list[tuple[float, float]]:
    """(whole retrain, fit as measured where it ran) wall seconds, for ``runs`` retrains."""
    services.training.runner = runner
    figures = []
    try:
        for _ in range(runs):
            started = time.perf_counter()
            outcome = services.training.retrain("m", actor="bench")
            whole = time.perf_counter() - started
            assert outcome.cost is not None
            figures.append((whole, outcome.cost.wall_seconds))
    finally:
        runner.close()
    return figures


def report(name: str, figures: list[tuple[float, float]]) -> None:
    (cold_whole, cold_fit), warm = figures[0], figures[1:]
    added = cold_whole - cold_fit
    print(f"{name:>7} cold: retrain {cold_whole:.2f} s, fit {cold_fit:.2f} s, runner adds {added:.2f} s")
    if warm:
        wholes = [w for w, _ in warm]
        adds = [w - f for w, f in warm]
        print(
            f"{name:>7} warm ({len(warm)}): retrain median {statistics.median(wholes):.2f} s "
            f"({min(wholes):.2f}-{max(wholes):.2f}), runner adds median {statistics.median(adds):.2f} s "
            f"({min(adds):.2f}-{max(adds):.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="retrains with each runner (the first cold)")
    parser.add_argument("--num-cpus", type=int, default=1, help="the Ray node's CPUs (the task asks for 1)")
    args = parser.parse_args()
    print("load before:", uptime())
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp, ray_cluster(args.num_cpus) as address:
        services = home_with_model(Path(tmp))
        try:
            child = timed_retrains(services, ChildProcessRunner(), args.runs)
            on_ray = timed_retrains(services, RayRunner(address, num_cpus=1), args.runs)
        finally:
            services.close()
        import ray

        ray.shutdown()
    report("process", child)
    report("ray", on_ray)
    print("load after:", uptime())


if __name__ == "__main__":
    main()
