"""Online accuracy alarms, scheduled retrains and the cap on running jobs, on a real database
(SQLite and PostgreSQL) with a model trained on the shipped restaurant reviews."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from conftest import uci_rows
from learnloop.clock import FakeClock
from learnloop.domain import FeedbackInput, JobStatus, ModelVersion
from learnloop.policy import Policy
from learnloop.services import Services
from learnloop.store.repositories import jobs as job_repo

CreateModel = Callable[..., ModelVersion]


def serve_and_correct(services: Services, rows: list[tuple[str, str]]) -> None:
    predicted = [services.predictions.predict("m", text) for text, _ in rows]
    services.ingest.flush()
    services.feedback.record_sync(
        "m",
        [FeedbackInput(prediction_id=p.prediction_id, label=lab) for p, (_, lab) in zip(predicted, rows, strict=True)],
    )


def test_an_accuracy_drop_alarms_once_queues_a_retrain_and_recovers(
    services: Services, make_model: CreateModel
) -> None:
    # Users now read phone reviews the other way round (a concept shift): the model's answers
    # are mostly wrong by their feedback, far below its golden accuracy.
    make_model(services, "m", policy=Policy.of(accuracy_window=200, accuracy_drop=0.05, retrain_every=100_000))
    golden = services.registry.version("m", 1).metrics["golden"]["accuracy"]
    flipped = [(t, "1" if lab == "0" else "0") for t, lab in uci_rows("amazon_cells")[:200]]
    serve_and_correct(services, flipped)
    perf = services.performance.check("m")
    assert perf.online.n == 200 and perf.online.accuracy is not None
    assert perf.alarm, perf.reason
    assert perf.online.ci_high is not None and perf.online.ci_high < golden - 0.05
    assert perf.expected_accuracy is not None and perf.expected_n == 200
    (event,) = services.registry.events("m", 10, kinds=["accuracy_dropped"])
    assert event.version == 1 and "SHOWN BELOW" in (event.reason or "")
    job = services.jobs.active("m", "retrain")
    assert job is not None and job.requested_by == "trigger:accuracy_drop"
    services.performance.check("m")  # still low: no second event, no second job
    assert len(services.registry.events("m", 10, kinds=["accuracy_dropped"])) == 1
    assert services.performance.performance("m").online.n == 200

    # The newest 200 judged answers are restaurant reviews, labelled as before: the alarm clears.
    serve_and_correct(services, uci_rows("yelp")[:200])
    assert not services.performance.check("m").alarm
    assert [e.kind for e in services.registry.events("m", 10, kinds=["accuracy_dropped", "accuracy_recovered"])] == [
        "accuracy_recovered",
        "accuracy_dropped",
    ]
    series = services.performance.performance("m", series=True).series
    assert sum(s["n"] for s in series) == 400 and {s["version"] for s in series} == {1}


def test_a_cron_schedule_queues_a_retrain_once_per_firing(
    services_factory: Callable[..., Services], make_model: CreateModel
) -> None:
    clock = FakeClock(datetime(2026, 3, 1, 2, 30, tzinfo=UTC))
    svc = services_factory(clock=clock)
    make_model(svc, "m", policy=Policy.of(retrain_schedule="0 3 * * *", retrain_every=100_000))
    svc.feedback.record_sync("m", [FeedbackInput(text=t, label=lab) for t, lab in uci_rows("amazon_cells")[:100]])
    assert svc.worker.check_triggers() == []  # 02:30
    clock.advance(1800)  # 03:00
    assert svc.worker.check_triggers() == ["m"]
    job = svc.jobs.active("m", "retrain")
    assert job is not None and job.requested_by == "trigger:schedule"
    (queued,) = svc.registry.events("m", 5, kinds=["retrain_queued"])
    assert "cron '0 3 * * *'" in (queued.reason or "")
    assert svc.worker.run_once()
    assert svc.jobs.get(job.id).status == JobStatus.SUCCEEDED
    clock.advance(3600)
    assert svc.worker.check_triggers() == []  # next firing: tomorrow 03:00
    clock.advance(23 * 3600)
    assert svc.worker.check_triggers() == ["m"]


def test_no_more_jobs_run_at_once_than_the_cap_across_workers(services: Services, make_model: CreateModel) -> None:
    for name in ("a", "b", "c"):
        make_model(services, name)
        services.jobs.enqueue(name, "retrain", requested_by="test")
    now = services.clock.now()
    with services.db.write() as conn:
        first = job_repo.claim_job(conn, "w1", now, lease_seconds=30, max_running=2)
    with services.db.write() as conn:
        second = job_repo.claim_job(conn, "w2", now, lease_seconds=30, max_running=2)
    with services.db.write() as conn:
        third = job_repo.claim_job(conn, "w3", now, lease_seconds=30, max_running=2)
    assert first is not None and second is not None and third is None
    with services.db.write() as conn:
        job_repo.update_job(conn, first.id, status=JobStatus.SUCCEEDED, finished_at=now)
    with services.db.write() as conn:
        third = job_repo.claim_job(conn, "w3", now, lease_seconds=30, max_running=2)
    assert third is not None and {first.model, second.model, third.model} == {"a", "b", "c"}
