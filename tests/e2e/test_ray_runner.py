"""Retrains handed to a real Ray cluster (``training_runner ray``): a one-node cluster started
by ``ray start --head --block`` on 127.0.0.1 (one CPU), stopped by this module.

* ``learnloop worker --training-runner ray`` retrains to a valid version, the fit a Ray task;
* a running Ray job cannot be paused (refused at the edge, and undone by the worker when paused
  from a process that did not refuse it), and cancelling it kills the Ray task: the job ends
  cancelled with nothing registered;
* the runner itself: progress reaches the caller, a failing task's error is the job's error
  ending with the remote traceback's last line, a learnloop error crosses as itself."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import WorkerLauncher, init_home, make_settings, on_postgres, subprocess_env, wait_for
from learnloop.domain import Job, JobStatus
from learnloop.errors import NotSupportedError
from learnloop.policy import Policy
from learnloop.services import build_services
from learnloop.training.ray_runner import RayRunner, RayTaskFailed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SEARCHING = Policy.of(search_families="tfidf-logreg", search_budget_seconds=3600, search_trials=40, selection_blocks=3)
FINISHED = ("succeeded", "failed", "cancelled")
TESTS = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A one-node Ray cluster's address; its processes are this fixture's session, ended with it."""
    if not (Path(sys.executable).parent / "ray").is_file():
        if os.environ.get("CI") == "true":
            pytest.fail("ray is not installed (pip install 'learnloop[ray]')")
        pytest.skip("ray is not installed (pip install 'learnloop[ray]')")
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ll-ray-")  # short: Ray's socket paths must fit 107 bytes
    # The Ray workers import the fit by reference: learnloop and the tests' helpers on their path.
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    head = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ray"),
            *("start", "--head", "--block", "--port", str(port), "--num-cpus", "1"),
            *("--node-ip-address", "127.0.0.1", "--include-dashboard", "false", "--disable-usage-stats"),
            *("--temp-dir", temp),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=subprocess_env(PYTHONPATH=path, RAY_USAGE_STATS_ENABLED="0"),
        start_new_session=True,  # its raylet, GCS and workers: one process group to end
    )
    try:
        wait_for(lambda: _listening(port), timeout=90, interval=0.2, what="Ray's GCS to listen")
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()  # --block: Ray stops the processes it started
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # anything of the cluster's left behind


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ray_env(address: str) -> dict[str, str]:
    return {
        "LEARNLOOP_TRAINING_RUNNER": "ray",
        "LEARNLOOP_RAY_ADDRESS": address,
        "LEARNLOOP_JOB_HEARTBEAT_SECONDS": "0.5",
        "LEARNLOOP_JOB_LEASE_SECONDS": "10",
    }


def _fits_running() -> list[int]:
    """The pids of processes running a learnloop fit as a Ray task (Ray titles them so)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"ray::learnloop-fit" in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@on_postgres
def test_a_worker_retrains_through_ray_to_a_valid_version(
    ray_address: str, live_worker: WorkerLauncher, tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    init_home(home, database_url)
    services = build_services(make_settings(home, database_url))
    try:
        job_id = services.jobs.enqueue("m", "retrain", requested_by="test").id
        worker = live_worker.start(home, database_url, env=_ray_env(ray_address))
        done: Job = wait_for(
            lambda: (j := services.jobs.get(job_id)).status.value in FINISHED and j,
            timeout=180,
            interval=0.2,
            what="the retrain through Ray",
        )
        assert done.status == JobStatus.SUCCEEDED, f"{done}\n{worker.log_tail()}"
        assert "connecting to Ray at " + ray_address in worker.log_tail(20000)
        assert done.result is not None and done.result["version"] == 2
        assert done.result["cost"]["cpu_seconds"] > 0  # measured where the fit ran
        [version] = [v for v in services.registry.versions("m") if v.version == 2]
        assert version.metrics and version.verdict  # scored and judged (no new feedback: the gate may reject it)
        written = services.store.get_dir(version.artifact_uri)  # what the Ray task wrote to the store
        assert any(written.iterdir())
    finally:
        services.close()


@on_postgres
def test_a_ray_job_cannot_be_paused_and_a_cancel_kills_its_task(
    ray_address: str, live_worker: WorkerLauncher, tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    init_home(home, database_url, policy=SEARCHING)
    plain = build_services(make_settings(home, database_url))  # a process that does not know where fits run
    edge = build_services(make_settings(home, database_url, isolate_training=True, training_runner="ray"))
    try:
        job_id = plain.jobs.enqueue("m", "retrain", requested_by="test").id
        worker = live_worker.start(home, database_url, env=_ray_env(ray_address))
        wait_for(
            lambda: plain.jobs.get(job_id).progress > 0.05 and _fits_running(),
            timeout=120,
            interval=0.1,
            what=f"the fit to run as a Ray task\n{worker.log_tail()}",
        )

        with pytest.raises(NotSupportedError, match="Ray cannot suspend a running task"):
            edge.jobs.pause(job_id, actor="alice", reason="free the cluster")
        plain.jobs.pause(job_id, actor="bob", reason="free the cluster")  # not refused here: the worker undoes it
        wait_for(
            lambda: plain.jobs.get(job_id).status == JobStatus.RUNNING,
            timeout=30,
            interval=0.1,
            what="the worker to refuse the pause",
        )
        [resumed] = plain.registry.events("m", 50, kinds=["retrain_resumed"])
        assert "pause refused" in (resumed.reason or "") and "Ray cannot suspend" in (resumed.reason or "")
        assert _fits_running()  # the fit went on all along

        plain.jobs.cancel(job_id, actor="carol", reason="wrong data")
        wait_for(lambda: not _fits_running(), timeout=30, interval=0.1, what="Ray to kill the fit's process")
        wait_for(
            lambda: "cancelled by carol" in worker.log_tail(20000),
            timeout=30,
            interval=0.1,
            what="the worker to stop the job",
        )
        job = plain.jobs.get(job_id)
        assert job.status == JobStatus.CANCELLED and job.cancelled_by == "carol"
        assert [v.version for v in plain.registry.versions("m")] == [1]  # nothing registered
    finally:
        plain.close()
        edge.close()


def test_the_runner_relays_progress_and_names_a_remote_failure(ray_address: str) -> None:
    import ray

    from training_gate import double, raise_error, report_thrice

    runner = RayRunner(ray_address, num_cpus=1)
    seen: list[tuple[float, str]] = []
    try:
        assert runner.run(report_thrice, 5, lambda f, m: seen.append((f, m))) == 5
        assert seen == [(0.25, "one"), (0.5, "two"), (0.75, "three")]
        assert runner.run(double, 21) == 42
        with pytest.raises(RayTaskFailed, match=r"the fit failed in its Ray task: ValueError: no rows left \(x\)$"):
            runner.run(raise_error, "value")
        with pytest.raises(NotSupportedError, match="a learnloop error from the fit"):
            runner.run(raise_error, "learnloop")  # crosses as itself, as from the child process
        with pytest.raises(RayTaskFailed, match="ended without a result"):
            runner.run(raise_error, "exit")  # its process dies, as under the OOM killer
    finally:
        runner.close()
        ray.shutdown()
