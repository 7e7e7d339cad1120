"""Job leases on a real database (SQLite and PostgreSQL): a job whose worker stopped renewing
its lease is reclaimed by any worker, retried while ``policy.retrain_retries`` lasts, then
failed; it never holds a running slot or its model's retrain slot beyond its lease; and the
worker that lost it writes nothing more."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from datetime import timedelta

import pytest

from conftest import register_version, uci_rows, wait_for
from learnloop.clock import FakeClock
from learnloop.config import Settings
from learnloop.domain import Job, JobStatus, ModelVersion, Policy, VersionStatus
from learnloop.errors import ConflictError, LeaseLostError, ValidationError
from learnloop.jobs.leases import Lease
from learnloop.services import Services
from learnloop.store.repositories import jobs as job_repo
from learnloop.training.child import child_initializer

pytestmark = pytest.mark.timeout(120)

CreateModel = Callable[..., ModelVersion]
LEASE = 30.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def svc(services_factory: Callable[..., Services], clock: FakeClock) -> Services:
    return services_factory(clock=clock, job_lease_seconds=LEASE, job_heartbeat_seconds=0.05)


def claim(svc: Services, worker: str) -> Job:
    """Claim the oldest queued job as ``worker`` (a worker that will never renew its lease)."""
    with svc.db.write() as conn:
        job = job_repo.claim_job(conn, worker, svc.clock.now(), lease_seconds=LEASE)
    assert job is not None and job.worker == worker
    return job


def event_kinds(svc: Services, model: str = "m") -> list[str]:
    return [e.kind for e in reversed(svc.registry.events(model, 20))]


def test_an_expired_retrain_is_queued_again_once_then_failed_with_the_reason(
    svc: Services, clock: FakeClock, make_model: CreateModel
) -> None:
    make_model(svc, "m")  # policy.retrain_retries defaults to 1
    job = svc.jobs.enqueue("m", "retrain", requested_by="test")
    first = claim(svc, "dead-1")
    assert (first.attempts, first.lease_until) == (1, clock.now() + timedelta(seconds=LEASE))

    clock.advance(LEASE - 1)
    assert svc.worker.reclaim() == []  # still leased
    clock.advance(1)
    [reclaimed] = svc.worker.reclaim()
    assert reclaimed.id == job.id and reclaimed.status == JobStatus.QUEUED
    assert reclaimed.worker is None and reclaimed.lease_until is None and reclaimed.attempts == 1
    assert reclaimed.last_error is not None and "dead-1 stopped renewing its lease" in reclaimed.last_error
    assert event_kinds(svc)[-2:] == ["retrain_queued", "retrain_reclaimed"]
    with pytest.raises(ConflictError):  # the retry holds the model's slot: one retrain at a time
        svc.jobs.enqueue("m", "retrain", requested_by="test")

    second = claim(svc, "dead-2")
    assert second.id == job.id and second.attempts == 2
    clock.advance(LEASE)
    [failed] = svc.worker.reclaim()
    assert failed.status == JobStatus.FAILED and failed.attempts == 2
    assert failed.error is not None
    assert "dead-2 stopped renewing its lease" in failed.error
    assert "failed after 2 attempt(s) (policy.retrain_retries is 1)" in failed.error
    assert event_kinds(svc)[-1] == "retrain_failed"
    assert svc.jobs.enqueue("m", "retrain", requested_by="test").id != job.id  # the slot is free again


def test_a_reclaimed_retrain_runs_again_from_scratch_and_succeeds(
    svc: Services, clock: FakeClock, make_model: CreateModel
) -> None:
    make_model(svc, "m")
    job = svc.jobs.enqueue("m", "retrain", requested_by="test")
    claim(svc, "dead")
    # The dead attempt had registered its candidate and died before rolling it out.
    stranded = register_version(svc, "m", uci_rows("yelp")[:200], note="half done", actor=f"job:{job.id}")
    clock.advance(LEASE + 1)
    svc.worker.run_periodic(force=True)  # the worker's "reclaim" work
    assert svc.worker.run_once() is True
    done = svc.jobs.get(job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.attempts == 2 and done.worker == svc.worker.name and done.lease_until is None
    assert done.result is not None and done.result["version"] == stranded.version + 1
    assert done.last_error is not None and "dead stopped renewing" in done.last_error
    abandoned = svc.registry.version("m", stranded.version)
    assert abandoned.status == VersionStatus.FAILED and "died before rolling it out" in (abandoned.status_reason or "")
    with pytest.raises(ConflictError, match="failed to train"):
        svc.registry.promote("m", stranded.version, actor="test")
    assert "candidate_abandoned" in event_kinds(svc)


def test_no_retries_fails_an_expired_retrain_and_enqueue_frees_the_slot_itself(
    svc: Services, clock: FakeClock, make_model: CreateModel
) -> None:
    # No worker looks (API replicas only): a new retrain request reclaims the model's dead job.
    make_model(svc, "m", policy=Policy.of(retrain_retries=0))
    stuck = svc.jobs.enqueue("m", "retrain", requested_by="test")
    claim(svc, "dead")
    clock.advance(LEASE + 1)
    fresh = svc.jobs.enqueue("m", "retrain", requested_by="test")
    assert fresh.id != stuck.id
    old = svc.jobs.get(stuck.id)
    assert old.status == JobStatus.FAILED and old.error is not None
    assert "failed after 1 attempt(s) (policy.retrain_retries is 0)" in old.error


def test_jobs_with_expired_leases_never_count_toward_max_running_jobs(
    svc: Services, clock: FakeClock, make_model: CreateModel
) -> None:
    for name in ("a", "b", "c"):
        make_model(svc, name)
        svc.jobs.enqueue(name, "retrain", requested_by="test")
    claim(svc, "dead-1")
    claim(svc, "dead-2")
    with svc.db.write() as conn:
        assert job_repo.claim_job(conn, "w", clock.now(), lease_seconds=LEASE, max_running=2) is None
    clock.advance(LEASE)  # both leases expired, not yet reclaimed by anyone
    with svc.db.write() as conn:
        third = job_repo.claim_job(conn, "w", clock.now(), lease_seconds=LEASE, max_running=2)
    assert third is not None and third.model == "c"


def test_a_heartbeat_keeps_a_running_job_from_being_reclaimed(
    svc: Services, clock: FakeClock, make_model: CreateModel
) -> None:
    make_model(svc, "m")
    svc.jobs.enqueue("m", "retrain", requested_by="test")
    job = claim(svc, "alive")
    with Lease(svc.db, clock, job, seconds=LEASE, heartbeat_seconds=0.05):
        clock.advance(LEASE / 2)
        renewed = clock.now() + timedelta(seconds=LEASE)
        wait_for(lambda: svc.jobs.get(job.id).lease_until == renewed, timeout=10, what="a heartbeat")
        clock.advance(LEASE / 2 + 1)  # past the first lease, within the renewed one
        assert svc.worker.reclaim() == []
    assert svc.jobs.get(job.id).status == JobStatus.RUNNING


def test_a_worker_that_lost_its_lease_writes_nothing_more(
    svc: Services, clock: FakeClock, make_model: CreateModel
) -> None:
    make_model(svc, "m")
    svc.jobs.enqueue("m", "retrain", requested_by="test")
    job = claim(svc, "slow")
    lost: list[str] = []
    lease = Lease(svc.db, clock, job, seconds=LEASE, heartbeat_seconds=3600, on_lost=lambda: lost.append("lost"))
    clock.advance(LEASE)
    svc.worker.reclaim()
    again = claim(svc, "slow")  # the same worker id claims the retry: the attempt number fences
    assert again.attempts == 2

    with pytest.raises(LeaseLostError, match="reclaimed by another worker"):
        lease.renew(progress=0.8, message="judging")
    assert lease.finish(status=JobStatus.SUCCEEDED, progress=1.0) is False
    assert lost == ["lost"]
    current = svc.jobs.get(job.id)
    assert (current.status, current.attempts, current.progress) == (JobStatus.RUNNING, 2, 0.0)


def test_settings_refuse_a_heartbeat_too_slow_for_the_lease() -> None:
    with pytest.raises(ValidationError, match="at most half of job_lease_seconds"):
        Settings(job_lease_seconds=10, job_heartbeat_seconds=6)
    with pytest.raises(ValidationError, match="LEARNLOOP_JOB_LEASE_SECONDS must be a number"):
        Settings.from_env({"LEARNLOOP_JOB_LEASE_SECONDS": "soon"})
    assert Settings.from_env({"LEARNLOOP_JOB_LEASE_SECONDS": "4", "LEARNLOOP_JOB_HEARTBEAT_SECONDS": "1"}) == Settings(
        job_lease_seconds=4, job_heartbeat_seconds=1
    )


@pytest.mark.parametrize(("offset", "exitcode"), [(0, 0), (1, 1)], ids=["its-parent", "another-pid"])
def test_the_training_child_knows_its_parent_by_pid(offset: int, exitcode: int) -> None:
    # As PID 1 of a container the living parent has pid 1: the child compares with the pid its
    # parent recorded, and exits only when its parent is not the one recorded.
    child = multiprocessing.get_context("spawn").Process(target=child_initializer, args=(os.getpid() + offset,))
    child.start()
    child.join(60)
    assert child.exitcode == exitcode


def test_a_job_handed_back_by_its_stopping_worker_is_queued_again_at_once_and_only_while_held(
    svc: Services, clock: FakeClock, make_model: CreateModel
) -> None:
    make_model(svc, "m")  # policy.retrain_retries defaults to 1
    job = svc.jobs.enqueue("m", "retrain", requested_by="test")
    first = claim(svc, "stopping-1")
    lease = Lease(svc.db, clock, first, seconds=LEASE, heartbeat_seconds=60)
    back = svc.jobs.release(lease, "worker stopping-1 was shut down during attempt 1", actor="stopping-1")
    assert back is not None and back.id == job.id and back.status == JobStatus.QUEUED  # no lease to wait for
    assert back.worker is None and back.lease_until is None and back.attempts == 1
    assert back.last_error == "worker stopping-1 was shut down during attempt 1"
    assert event_kinds(svc)[-1] == "retrain_reclaimed"

    second = claim(svc, "stopping-2")
    assert second.attempts == 2
    stale = Lease(svc.db, clock, first, seconds=LEASE, heartbeat_seconds=60)  # the first attempt's, again
    assert svc.jobs.release(stale, "late", actor="stopping-1") is None and stale.lost  # not its job now
    assert svc.jobs.get(job.id).worker == "stopping-2"

    current = Lease(svc.db, clock, second, seconds=LEASE, heartbeat_seconds=60)
    failed = svc.jobs.release(current, "worker stopping-2 was shut down during attempt 2", actor="stopping-2")
    assert failed is not None and failed.status == JobStatus.FAILED  # its retries are spent
    assert failed.error is not None and "failed after 2 attempt(s) (policy.retrain_retries is 1)" in failed.error
    assert event_kinds(svc)[-1] == "retrain_failed"
