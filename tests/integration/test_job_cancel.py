"""Cancelling a job on a real database (SQLite and PostgreSQL): a queued job is cancelled at
once; a running retrain is cancelled in the database at once and its worker, finding at its
next heartbeat that it no longer holds the job, kills the training process, registers
nothing and leaves the status as cancelled; the model's retrain slot is free at once and the
next retrain runs in a fresh training process."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from conftest import alive, wait_for
from learnloop.app import create_app
from learnloop.domain import JobStatus, ModelVersion
from learnloop.errors import ConflictError, JobCancelledError, NotFoundError
from learnloop.jobs.leases import Lease
from learnloop.services import Services
from learnloop.store.repositories import jobs as job_repo
from learnloop.training.runner import ChildProcessRunner, InProcessRunner, Report
from training_gate import gated

pytestmark = pytest.mark.timeout(180)

CreateModel = Callable[..., ModelVersion]
S = TypeVar("S")
R = TypeVar("R")


@pytest.fixture
def svc(services_factory: Callable[..., Services]) -> Services:
    return services_factory(job_lease_seconds=30.0, job_heartbeat_seconds=0.05)


class GatedRunner(ChildProcessRunner):
    """The real training process, whose every fit first waits for a gate file to exist: a fit
    that lasts until the test lets it go."""

    def __init__(self, gate: Path) -> None:
        super().__init__()
        self.gate = gate

    def run(self, fn: Callable[[S, Report], R], spec: S, progress: Report | None = None) -> R:
        result: R = super().run(gated, (self.gate, fn, spec), progress)
        return result

    def pids(self) -> list[int]:
        path = self.gate.with_suffix(".pids")
        return [int(line) for line in path.read_text().split()] if path.exists() else []


def dashboard_page(svc: Services, path: str) -> str:
    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(services=svc))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=30) as http:
            return await http.get(path)

    page = asyncio.run(get())
    assert page.status_code == 200, page.text
    return page.text


def version_numbers(svc: Services) -> list[int]:
    return [v.version for v in svc.registry.versions("m")]


def test_a_queued_job_is_cancelled_at_once_and_frees_its_models_slot(svc: Services, make_model: CreateModel) -> None:
    make_model(svc, "m")
    job = svc.jobs.enqueue("m", "retrain", requested_by="test")

    cancelled = svc.jobs.cancel(job.id, actor="alice", reason="queued by mistake")
    assert cancelled.status == JobStatus.CANCELLED and cancelled.finished_at is not None
    assert (cancelled.cancelled_by, cancelled.cancel_reason) == ("alice", "queued by mistake")
    assert svc.jobs.active("m", "retrain") is None
    [event] = svc.registry.events("m", 10, kinds=["retrain_cancelled"])
    assert (event.actor, event.reason) == ("alice", "queued by mistake")
    assert event.data["job_id"] == job.id and event.data["was"] == "queued"
    assert svc.worker.run_once() is False  # nothing left to claim
    assert "cancelled by alice: queued by mistake" in dashboard_page(svc, "/dashboard/models/m")

    again = svc.jobs.enqueue("m", "retrain", requested_by="test")  # the slot is free
    assert again.id != job.id and again.status == JobStatus.QUEUED


def test_only_a_queued_or_running_job_can_be_cancelled(svc: Services, make_model: CreateModel) -> None:
    make_model(svc, "m")
    job = svc.jobs.enqueue("m", "retrain", requested_by="test")
    assert svc.worker.run_once() is True
    assert svc.jobs.get(job.id).status == JobStatus.SUCCEEDED
    with pytest.raises(ConflictError, match="is succeeded already"):
        svc.jobs.cancel(job.id, actor="alice", reason="too late")
    assert svc.jobs.get(job.id).cancelled_by is None
    with pytest.raises(NotFoundError, match="is not a job id"):
        svc.jobs.cancel("no-such-job", actor="alice", reason="typo")
    assert svc.registry.events("m", 10, kinds=["retrain_cancelled"]) == []


def test_a_retrain_cancelled_mid_fit_ends_its_training_process_and_registers_nothing(
    svc: Services, make_model: CreateModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="learnloop.worker")
    make_model(svc, "m")
    before = version_numbers(svc)
    runner = GatedRunner(tmp_path / "gate")
    svc.training.runner = runner
    job = svc.jobs.enqueue("m", "retrain", requested_by="test")
    worker = threading.Thread(target=svc.worker.run_once)
    worker.start()
    try:
        [pid] = wait_for(runner.pids, timeout=60, what="the fit to start in the training process")
        assert svc.jobs.get(job.id).status == JobStatus.RUNNING

        cancelled = svc.jobs.cancel(job.id, actor="alice", reason="wrong data")
        assert cancelled.status == JobStatus.CANCELLED and cancelled.worker == svc.worker.name
        wait_for(lambda: not alive(pid), timeout=60, what="the training process to be killed")
        worker.join(60)
        assert not worker.is_alive()
    finally:
        runner.gate.touch()  # lets a fit that was not stopped end, whatever failed above
        worker.join(60)

    done = svc.jobs.get(job.id)
    assert done.status == JobStatus.CANCELLED and done.error is None
    assert (done.cancelled_by, done.cancel_reason) == ("alice", "wrong data")
    assert version_numbers(svc) == before
    kinds = [e.kind for e in svc.registry.events("m", 10)]
    assert kinds[0] == "retrain_cancelled" and "retrain_failed" not in kinds
    said = [r.getMessage() for r in caplog.records if r.name == "learnloop.worker"]
    assert any(f"job {job.id} cancelled by alice (wrong data): stopped" in line for line in said), said
    assert not any(f"job {job.id} failed" in line for line in said), said

    again = svc.jobs.enqueue("m", "retrain", requested_by="test")  # free at once
    try:
        assert svc.worker.run_once() is True
    finally:
        runner.close()
    finished = svc.jobs.get(again.id)
    assert finished.status == JobStatus.SUCCEEDED, finished.error
    assert finished.result is not None and finished.result["version"] == max(before) + 1
    assert len(runner.pids()) == 2 and runner.pids()[1] != pid  # a fresh training process


def test_a_cancel_that_lands_after_the_fit_but_before_registering_registers_nothing(
    services_factory: Callable[..., Services], make_model: CreateModel
) -> None:
    # The heartbeat is too slow to notice: the progress report before registering must.
    svc = services_factory(job_lease_seconds=3600.0, job_heartbeat_seconds=1800.0)
    make_model(svc, "m")
    before = version_numbers(svc)
    job = svc.jobs.enqueue("m", "retrain", requested_by="test")

    class CancelledAfterTheFit(InProcessRunner):
        def run(self, fn: Callable[[S, Report], R], spec: S, progress: Report | None = None) -> R:
            result = super().run(fn, spec, progress)
            svc.jobs.cancel(job.id, actor="bob", reason="changed my mind")
            return result

    svc.training.runner = CancelledAfterTheFit()
    assert svc.worker.run_once() is True
    done = svc.jobs.get(job.id)
    assert (done.status, done.cancelled_by, done.error) == (JobStatus.CANCELLED, "bob", None)
    assert version_numbers(svc) == before
    assert svc.registry.events("m", 1)[0].kind == "retrain_cancelled"


def test_a_lease_on_a_cancelled_job_stops_once_and_writes_nothing(svc: Services, make_model: CreateModel) -> None:
    make_model(svc, "m")
    svc.jobs.enqueue("m", "retrain", requested_by="test")
    with svc.db.write() as conn:
        job = job_repo.claim_job(conn, "w", svc.clock.now(), lease_seconds=30)
    assert job is not None
    lost: list[str] = []
    lease = Lease(svc.db, svc.clock, job, seconds=30, heartbeat_seconds=3600, on_lost=lambda: lost.append("lost"))
    svc.jobs.cancel(job.id, actor="carol", reason="not now")

    with pytest.raises(JobCancelledError, match=r"cancelled by carol \(not now\)"):
        lease.renew(progress=0.8, message="judging")
    with pytest.raises(JobCancelledError):
        lease.renew()
    assert lease.fail("boom", actor="w") is False
    assert lost == ["lost"] and lease.cancelled is not None
    current = svc.jobs.get(job.id)
    assert (current.status, current.progress, current.error) == (JobStatus.CANCELLED, 0.0, None)
