"""Pausing and resuming a real retrain (SQLite and PostgreSQL). A running retrain's fit runs in
the spawned training process; paused, its worker stops that process at its next heartbeat (the
process is in state T and its CPU time does not grow), keeps renewing the job's lease, and the
job reads ``paused``; resumed, the same process continues and the retrain registers a valid
version. A paused retrain can be cancelled (its stopped process is ended). A paused job whose
worker stopped renewing is reclaimed as paused with no worker, and ``resume`` queues it again,
saying that it restarts. A fit run in this process (no training process) pauses at its next
progress report. Each action is an event naming who did it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from conftest import alive, wait_for
from learnloop.clock import FakeClock
from learnloop.domain import JobStatus, ModelVersion
from learnloop.errors import ConflictError
from learnloop.services import Services
from learnloop.store.repositories import jobs as job_repo
from learnloop.training.runner import ChildProcessRunner, InProcessRunner, Report

pytestmark = pytest.mark.timeout(300)

CreateModel = Callable[..., ModelVersion]
S = TypeVar("S")
R = TypeVar("R")
# A retrain whose fit lasts: a search of a fixed number of trials (a budget it never reaches).
SEARCH = {"search_families": "tfidf-logreg", "search_budget_seconds": 3600, "search_trials": 20, "selection_blocks": 3}
TICKS = 100.0  # USER_HZ: /proc/PID/stat counts CPU time in 1/100 s on Linux


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def svc(services_factory: Callable[..., Services], make_model: CreateModel) -> Iterator[Services]:
    """Model "m" at version 1, its retrains searching, run in a real training process."""
    svc = services_factory(job_lease_seconds=30.0, job_heartbeat_seconds=0.1)
    make_model(svc, "m")
    svc.registry.update_policy("m", SEARCH, actor="test")
    svc.training.runner = ChildProcessRunner()
    yield svc
    svc.training.runner.close()


def searching(svc: Services, job_id: str) -> int:
    """The training process's pid, once the retrain's search is under way in it."""

    def started() -> int | None:
        job = svc.jobs.get(job_id)
        assert job.status in (JobStatus.QUEUED, JobStatus.RUNNING), job
        pids = svc.training.runner.pids()  # type: ignore[attr-defined]
        return pids[0] if pids and "candidate" in (job.message or "") else None

    pid: int = wait_for(started, timeout=120, interval=0.05, what="the retrain's search to start")
    return pid


def paused(svc: Services, job_id: str, pid: int) -> None:
    """Pause the job and wait until its worker stopped the training process."""
    job = svc.jobs.pause(job_id, actor="alice", reason="the machine is needed")
    assert job.status == JobStatus.PAUSED and job.message is not None and "paused by alice" in job.message
    wait_for(lambda: state(pid) == "T", timeout=30, what="the training process to be stopped")


def test_a_paused_retrain_uses_no_cpu_keeps_its_lease_and_resumes_to_a_valid_version(svc: Services) -> None:
    before = max(v.version for v in svc.registry.versions("m"))
    job = svc.jobs.enqueue("m", "retrain", requested_by="test")
    worker = threading.Thread(target=svc.worker.run_once)
    worker.start()
    try:
        pid = searching(svc, job.id)
        start = cpu_seconds(pid)
        wait_for(lambda: cpu_seconds(pid) > start, timeout=30, what="the fit to use CPU")  # the measure can move

        paused(svc, job.id, pid)
        held = svc.jobs.get(job.id)
        assert held.status == JobStatus.PAUSED and held.worker == svc.worker.name
        stopped_at = cpu_seconds(pid)
        time.sleep(1.0)
        assert cpu_seconds(pid) == stopped_at  # a stopped process is given no CPU at all
        assert state(pid) == "T" and worker.is_alive()
        lease = svc.jobs.get(job.id).lease_until  # renewed while paused: never expires under a live worker
        assert held.lease_until is not None and lease is not None and lease > held.lease_until
        assert svc.jobs.get(job.id).status == JobStatus.PAUSED  # progress reports did not overwrite it
        with pytest.raises(ConflictError, match="is paused; only a queued or running job can be paused"):
            svc.jobs.pause(job.id, actor="alice", reason="twice")

        resumed = svc.jobs.resume(job.id, actor="bob", reason="go on")
        assert resumed.status == JobStatus.RUNNING
        assert resumed.message is not None and "continues where it stopped" in resumed.message
        wait_for(lambda: cpu_seconds(pid) > stopped_at, timeout=30, what="the same process to run again")
        worker.join(240)
        assert not worker.is_alive()
    finally:
        if svc.jobs.get(job.id).status in (JobStatus.RUNNING, JobStatus.PAUSED):  # a failed assertion above
            svc.jobs.cancel(job.id, actor="test", reason="the test failed")
        worker.join(60)

    done = svc.jobs.get(job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.attempts == 1 and done.result is not None and done.result["version"] == before + 1
    version = svc.registry.version("m", before + 1)
    assert version.metrics and version.artifact_uri
    assert svc.training.runner.pids() == [pid]  # type: ignore[attr-defined]  # the process was never replaced
    [resumed_event] = svc.registry.events("m", 50, kinds=["retrain_resumed"])
    [paused_event] = svc.registry.events("m", 50, kinds=["retrain_paused"])
    assert (paused_event.actor, paused_event.reason, paused_event.data["was"]) == (
        "alice",
        "the machine is needed",
        "running",
    )
    assert (resumed_event.actor, resumed_event.reason) == ("bob", "go on")
    assert "continues where it stopped" in resumed_event.data["how"]


def test_a_paused_retrain_can_be_cancelled_and_its_stopped_process_ends(svc: Services) -> None:
    before = [v.version for v in svc.registry.versions("m")]
    job = svc.jobs.enqueue("m", "retrain", requested_by="test")
    worker = threading.Thread(target=svc.worker.run_once)
    worker.start()
    try:
        pid = searching(svc, job.id)
        paused(svc, job.id, pid)
        cancelled = svc.jobs.cancel(job.id, actor="carol", reason="not worth it")
        assert cancelled.status == JobStatus.CANCELLED
        wait_for(lambda: not alive(pid), timeout=30, what="the stopped training process to end")
        worker.join(60)
        assert not worker.is_alive()
    finally:
        worker.join(60)
    done = svc.jobs.get(job.id)
    assert (done.status, done.cancelled_by, done.error) == (JobStatus.CANCELLED, "carol", None)
    assert [v.version for v in svc.registry.versions("m")] == before
    kinds = [e.kind for e in svc.registry.events("m", 10)]
    assert kinds[:2] == ["retrain_cancelled", "retrain_paused"] and "retrain_failed" not in kinds
    assert svc.jobs.active("m", "retrain") is None


def test_a_queued_job_paused_is_not_claimed_until_resumed(
    services_factory: Callable[..., Services], make_model: CreateModel
) -> None:
    svc = services_factory()
    make_model(svc, "m")
    job = svc.jobs.enqueue("m", "retrain", requested_by="test")
    assert svc.jobs.pause(job.id, actor="dan", reason="later").status == JobStatus.PAUSED
    assert svc.worker.run_once() is False
    with pytest.raises(ConflictError, match="is already paused"):
        svc.jobs.enqueue("m", "retrain", requested_by="test")  # it keeps its model's slot
    resumed = svc.jobs.resume(job.id, actor="dan", reason="now")
    assert (resumed.status, resumed.message) == (JobStatus.QUEUED, "resumed by dan: queued; it had not started")
    assert svc.worker.run_once() is True
    assert svc.jobs.get(job.id).status == JobStatus.SUCCEEDED
    with pytest.raises(ConflictError, match="only a queued or running job can be paused"):
        svc.jobs.pause(job.id, actor="dan", reason="too late")


def test_a_paused_job_whose_worker_died_is_reclaimed_as_paused_and_restarts_once_resumed(
    services_factory: Callable[..., Services], make_model: CreateModel
) -> None:
    clock = FakeClock()
    svc = services_factory(clock=clock, job_lease_seconds=30.0, job_heartbeat_seconds=5.0)
    make_model(svc, "m")
    before = max(v.version for v in svc.registry.versions("m"))
    job = svc.jobs.enqueue("m", "retrain", requested_by="test")
    with svc.db.write() as conn:  # a worker claims it, is paused, then dies: no more heartbeats
        claimed = job_repo.claim_job(conn, "dead-worker", clock.now(), lease_seconds=30)
    assert claimed is not None and claimed.id == job.id
    svc.jobs.pause(job.id, actor="erin", reason="busy")
    with pytest.raises(ConflictError, match=f"is paused \\(job {job.id}\\)"):
        svc.deletion.delete("m", actor="test")  # its stopped fit is still its worker's

    clock.advance(29)
    assert svc.worker.reclaim() == []  # the lease holds: paused is not dead
    clock.advance(2)
    [reclaimed] = svc.worker.reclaim()
    assert (reclaimed.status, reclaimed.worker, reclaimed.lease_until) == (JobStatus.PAUSED, None, None)
    assert reclaimed.last_error is not None and "while the job was paused" in reclaimed.last_error
    [event] = svc.registry.events("m", 10, kinds=["retrain_reclaimed"])
    assert "starts from scratch once resumed; the job stays paused" in (event.reason or "")
    clock.advance(3600)
    assert svc.worker.reclaim() == [] and svc.worker.run_once() is False  # it waits for a person

    resumed = svc.jobs.resume(job.id, actor="erin", reason="free now")
    assert resumed.status == JobStatus.QUEUED
    assert resumed.message is not None and "attempt 2 restarts from scratch" in resumed.message
    assert "candidate search keeps the trials" not in resumed.message  # this model searches nothing
    assert svc.worker.run_once() is True
    done = svc.jobs.get(job.id)
    assert done.status == JobStatus.SUCCEEDED and done.attempts == 2, done.error
    assert done.result is not None and done.result["version"] == before + 1


def test_a_paused_job_whose_worker_died_fails_when_its_retries_are_spent(
    services_factory: Callable[..., Services], make_model: CreateModel
) -> None:
    clock = FakeClock()
    svc = services_factory(clock=clock)
    make_model(svc, "m")
    svc.registry.update_policy("m", {"retrain_retries": 0}, actor="test")
    job = svc.jobs.enqueue("m", "retrain", requested_by="test")
    with svc.db.write() as conn:
        job_repo.claim_job(conn, "dead-worker", clock.now(), lease_seconds=30)
    svc.jobs.pause(job.id, actor="erin", reason="busy")
    clock.advance(31)
    resumed = svc.jobs.resume(job.id, actor="erin", reason="free now")  # finds the worker dead
    assert resumed.status == JobStatus.FAILED and resumed.error is not None
    assert "policy.retrain_retries is 0" in resumed.error
    assert svc.jobs.active("m", "retrain") is None


def test_an_in_process_fit_pauses_at_its_next_progress_report(
    services_factory: Callable[..., Services], make_model: CreateModel
) -> None:
    svc = services_factory(job_lease_seconds=30.0, job_heartbeat_seconds=0.05)
    make_model(svc, "m")
    before = [v.version for v in svc.registry.versions("m")]
    job = svc.jobs.enqueue("m", "retrain", requested_by="test")

    class PausedDuringTheFit(InProcessRunner):  # the fit cannot be stopped: it runs in this process
        def run(self, fn: Callable[[S, Report], R], spec: S, progress: Report | None = None) -> R:
            result = super().run(fn, spec, progress)
            svc.jobs.pause(job.id, actor="frank", reason="lunch")
            return result

    svc.training.runner = PausedDuringTheFit()
    worker = threading.Thread(target=svc.worker.run_once)
    worker.start()
    try:
        wait_for(lambda: svc.jobs.get(job.id).status == JobStatus.PAUSED, timeout=60, what="the pause")
        time.sleep(0.5)  # ten heartbeats: the report after the fit waits, registering nothing
        assert worker.is_alive() and svc.jobs.get(job.id).status == JobStatus.PAUSED
        assert [v.version for v in svc.registry.versions("m")] == before
    finally:
        svc.jobs.resume(job.id, actor="frank", reason="back")
        worker.join(120)
    done = svc.jobs.get(job.id)
    assert done.status == JobStatus.SUCCEEDED and done.result is not None, done.error
    assert done.result["version"] == max(before) + 1
