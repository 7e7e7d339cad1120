"""Retrains survive the death of whoever runs them: a ``learnloop worker`` SIGKILLed mid-retrain
leaves the job to the next worker process once its lease expires, and a server running as
PID 1 of its own PID namespace (the main process of a container without an init) retrains,
and the job it left running when killed blocks nothing beyond a lease; a worker stopped
gracefully (SIGTERM, or Ctrl-C) ends its fit and hands the job back at once."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import (
    LASTING_RETRAIN,
    QUICK_RETRAIN,
    LiveServer,
    ServerLauncher,
    WorkerLauncher,
    alive,
    change_policy,
    descendants,
    init_home,
    kill_leftovers,
    make_settings,
    on_postgres,
    on_sqlite,
    wait_for,
    wait_until_searching,
    wait_until_worker_searches,
)
from learnloop.domain import Job, JobStatus
from learnloop.services import build_services

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

M = "/v1/models/m"
SHORT_LEASE = {"LEARNLOOP_JOB_LEASE_SECONDS": "3", "LEARNLOOP_JOB_HEARTBEAT_SECONDS": "0.5"}
# learnloop as PID 1 of a new PID namespace, killed with unshare (as a container runtime would).
AS_PID_1 = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child")
FINISHED = ("succeeded", "failed", "cancelled")


@on_postgres  # workers in processes of their own share a database; leases on both: tests/integration
def test_a_worker_killed_mid_retrain_leaves_the_retrain_to_the_next_worker(
    live_worker: WorkerLauncher, tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    init_home(home, database_url)
    services = build_services(make_settings(home, database_url))  # this test's view of the queue
    orphans: list[int] = []
    try:
        job_id = services.jobs.enqueue("m", "retrain", requested_by="test").id
        first = live_worker.start(home, database_url, env=SHORT_LEASE)

        def fitting() -> Job | None:  # running, with its training process started
            job = services.jobs.get(job_id)
            if job.status != JobStatus.QUEUED and job.status != JobStatus.RUNNING:
                pytest.fail(f"the retrain ended before the kill: {job}\n{first.log_tail()}")
            return job if job.status == JobStatus.RUNNING and descendants(first.process.pid) else None

        taken = wait_for(fitting, timeout=60, interval=0.02, what="the first worker to start fitting")
        orphans = descendants(first.process.pid)
        first.kill()
        wait_for(lambda: not any(alive(pid) for pid in orphans), timeout=10, what="its training process to die")

        second = live_worker.start(home, database_url, env=SHORT_LEASE)
        done = wait_for(
            lambda: (j := services.jobs.get(job_id)).status.value in FINISHED and j,
            timeout=120,
            interval=0.1,
            what="the second worker to finish the retrain",
        )
        assert done.status == JobStatus.SUCCEEDED, f"{done}\n{second.log_tail()}"
        assert done.attempts == 2 and done.worker not in (None, taken.worker)
        assert done.last_error is not None and f"worker {taken.worker} stopped renewing its lease" in done.last_error
        assert done.result is not None and done.result["version"] == 2
        [reclaimed] = services.registry.events("m", 50, kinds=["retrain_reclaimed"])
        assert reclaimed.actor == done.worker and reclaimed.data["job_id"] == job_id
        assert taken.lease_until is not None and reclaimed.created_at is not None
        assert reclaimed.created_at >= taken.lease_until  # never taken back while the lease held
    finally:
        services.close()
        kill_leftovers(orphans)


@on_sqlite  # what is tested is the process, not the database
@pytest.mark.parametrize(
    ("stop", "background", "retries"),
    [(signal.SIGTERM, False, 1), (signal.SIGINT, True, 0)],
    ids=["sigterm", "ctrl-c-started-in-the-background-no-retries-left"],
)
def test_a_worker_stopped_mid_retrain_ends_the_fit_and_hands_the_job_back_at_once(
    live_worker: WorkerLauncher, tmp_path: Path, database_url: str, stop: signal.Signals, background: bool, retries: int
) -> None:
    # SIGTERM is what process managers send; SIGINT reaches a worker its shell started with it
    # ignored (a background command). Either is a graceful stop: the job is queued again at
    # once (or failed once its retries are spent), not left running until its lease expires.
    home = tmp_path / "home"
    init_home(home, database_url)
    change_policy(home, database_url, {**LASTING_RETRAIN, "retrain_retries": retries})
    services = build_services(make_settings(home, database_url))
    fits: list[int] = []
    try:
        job_id = services.jobs.enqueue("m", "retrain", requested_by="test").id
        worker = live_worker.start(home, database_url, background=background)

        running = wait_until_worker_searches(services, job_id, worker)
        fits = descendants(worker.process.pid)
        worker.process.send_signal(stop)
        assert worker.process.wait(15) == 0, worker.log_tail()
        job = services.jobs.get(job_id)
        why = f"worker {running.worker} was shut down during attempt 1"
        assert job.last_error is not None and job.last_error.startswith(why), f"{job}\n{worker.log_tail()}"
        if retries:
            assert (job.status, job.worker, job.lease_until) == (JobStatus.QUEUED, None, None), job
            [event] = services.registry.events("m", 50, kinds=["retrain_reclaimed"])
            assert event.actor == running.worker and "attempt 2 of 2 starts from scratch" in (event.reason or "")
        else:
            assert job.status == JobStatus.FAILED and job.error is not None, job
            assert "failed after 1 attempt(s) (policy.retrain_retries is 0)" in job.error, job.error
        wait_for(lambda: not any(alive(pid) for pid in fits), timeout=10, what="its training process to die")
        assert "worker stopped" in worker.log_tail()
    finally:
        services.close()
        kill_leftovers(fits)


@pytest.fixture(scope="module")
def pid_namespaces() -> None:
    """``unshare`` can make a PID namespace here (it needs root, as in CI)."""
    try:
        probe = subprocess.run([*AS_PID_1, "true"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        probe = subprocess.CompletedProcess([], 127, "", "unshare is not installed")
    if probe.returncode != 0:
        message = f"unshare cannot make a PID namespace here: {probe.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def namespace_pid(server: LiveServer) -> int:
    """The server's pid inside its own PID namespace (the last NSpid field of unshare's child)."""
    [learnloop, *_] = wait_for(lambda: descendants(server.process.pid), timeout=10, what="unshare's child")
    for line in Path(f"/proc/{learnloop}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    pytest.fail("no NSpid line in /proc/PID/status")


def retrain(http: httpx.Client) -> str:
    response = http.post(f"{M}/retrain")
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def finished(http: httpx.Client, job_id: str, what: str, timeout: float = 90) -> dict[str, Any]:
    return dict(
        wait_for(
            lambda: (j := http.get(f"/v1/jobs/{job_id}").json())["status"] in FINISHED and j,
            timeout=timeout,
            interval=0.1,
            what=what,
        )
    )


@on_sqlite  # one container, the default database
@pytest.mark.usefixtures("pid_namespaces")
def test_a_server_as_pid_1_retrains_and_the_job_it_left_running_blocks_nothing(
    live_server: ServerLauncher, tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    init_home(home, database_url)
    server = live_server.start(home, database_url, wrap=AS_PID_1, env=SHORT_LEASE)
    orphans: list[int] = []
    try:
        assert namespace_pid(server) == 1
        with server.client() as http:
            first = finished(http, retrain(http), "a retrain under PID 1")
            assert first["status"] == "succeeded", f"{first}\n{server.log_tail()}"
            changed = http.patch(f"{M}/policy", json={"changes": LASTING_RETRAIN})
            assert changed.status_code == 200, changed.text
            left = retrain(http)
            wait_until_searching(http, left, server)
        orphans = descendants(server.process.pid)
        server.kill()  # unshare, then the kernel, kill the whole namespace
        change_policy(home, database_url, QUICK_RETRAIN)  # its rerun fits as the first did

        restarted = live_server.start(home, database_url, wrap=AS_PID_1, env=SHORT_LEASE)
        assert namespace_pid(restarted) == 1  # the same "host:1" that once looked alive again
        with restarted.client() as http:
            job = finished(http, left, "the job left running to be reclaimed and run again")
            assert job["status"] == "succeeded", f"{job}\n{restarted.log_tail()}"
            assert job["attempts"] == 2 and "stopped renewing its lease" in job["last_error"]
            again = finished(http, retrain(http), "the next retrain")
            assert again["status"] == "succeeded", again
            assert again["result"]["version"] > job["result"]["version"]
    finally:
        kill_leftovers(orphans)
