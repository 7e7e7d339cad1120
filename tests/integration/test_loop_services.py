"""Repositories and services on a migrated real database (SQLite file and PostgreSQL)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import uci_rows, wait_for
from learnloop.clock import FakeClock
from learnloop.curation import split_golden
from learnloop.domain import FeedbackEvent, FeedbackInput, JobStatus, ModelVersion, VersionStatus
from learnloop.errors import (
    ArtifactError,
    ConflictError,
    DuplicateInBatchError,
    GateRejectedError,
    IdempotencyConflictError,
    InsufficientDataError,
    ModelUnavailableError,
    NotFoundError,
)
from learnloop.ids import new_id
from learnloop.policy import Policy
from learnloop.services import Services
from learnloop.store import tables as t
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.tasks.classification import derive_examples, predicted_label

CreateModel = Callable[..., ModelVersion]


def feedback_rows(services: Services, model: str = "m") -> list[FeedbackEvent]:
    with services.db.read() as conn:
        return feedback_repo.feedback_with_predictions(conn, model, services.clock.now())


def feedback_table_count(services: Services) -> int:
    with services.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.feedback)).scalar_one())


def examples(n: int, domain: str = "amazon_cells", offset: int = 0) -> list[FeedbackInput]:
    return [FeedbackInput(text=text, label=label) for text, label in uci_rows(domain)[offset : offset + n]]


def snapshot_lines(services: Services, snapshot_hash: str) -> list[dict[str, object]]:
    snap = services.registry.snapshot(snapshot_hash)
    assert snap is not None
    data = gzip.decompress(services.store.get_bytes(snap.uri))
    return [json.loads(line) for line in data.splitlines()]


def artifact_dir(services: Services, version: ModelVersion) -> Path:
    return services.store.get_dir(version.artifact_uri)


# -- models and versions ---------------------------------------------------------------------


def test_bootstrap_version_1_is_champion_with_golden_metrics(services: Services, make_model: CreateModel) -> None:
    v1 = make_model(services, "m")
    assert v1.version == 1
    assert v1.status == VersionStatus.CHAMPION
    train_rows, golden_rows = split_golden(uci_rows("yelp"), 0.2, 0)
    golden = v1.metrics["golden"]
    assert golden["n"] == len(golden_rows)
    assert len(train_rows) == 1000 - len(golden_rows)
    # A training sentence that is a near copy of a golden one (punctuation aside) stays out.
    dropped = v1.metrics["snapshot_counts"]["dropped_overlap_with_golden"]
    assert v1.metrics["train_examples"] == len(train_rows) - dropped and 0 < dropped <= 3
    assert 0.6 < golden["accuracy"] <= 1.0
    low, high = golden["accuracy_ci95"]
    assert low < golden["accuracy"] < high
    assert sum(map(sum, golden["confusion_matrix"]["matrix"])) == golden["n"]
    # Probability metrics with bootstrap intervals, read back from the database.
    for key in ("macro_f1", "roc_auc", "log_loss", "brier"):
        low, high = golden[f"{key}_ci95"]
        assert low < golden[key] < high, key
    assert golden["roc_auc"] > golden["accuracy"] > 0.5
    assert 0 <= golden["ece"] < 0.3 and golden["ece_ci95"][0] < golden["ece_ci95"][1]
    latency = v1.metrics["latency"]
    assert latency["n"] == min(200, len(golden_rows))
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    deployment = services.registry.deployment("m")
    assert (deployment.champion_version, deployment.previous_version) == (1, None)
    assert services.cache.champion("m").version == 1
    result = services.predictions.predict("m", "The food was delicious and the staff were friendly.")
    assert (result.version, result.label) == (1, "1")
    assert sum(result.probabilities.values()) == pytest.approx(1.0)


def test_model_from_a_data_file_with_a_long_path(services: Services, make_model: CreateModel) -> None:
    # `learnloop init --data PATH` records PATH as the examples' source; paths are often
    # longer than 64 characters (the shipped file inside a virtualenv, for one).
    source = str(Path("/srv/learnloop/data/customer-feedback/exports/2026-01/reviews_labelled.tsv").resolve())
    assert len(source) > 64
    v1 = make_model(services, "m", source=source)
    assert v1.version == 1
    assert services.registry.events("m")[-1].data["source"] == source


def test_model_names_are_unique(services: Services, make_model: CreateModel) -> None:
    make_model(services, "m")
    with pytest.raises(ConflictError):
        make_model(services, "m")


# -- feedback --------------------------------------------------------------------------------


def test_same_client_feedback_id_twice_stores_one_event(services: Services, make_model: CreateModel) -> None:
    make_model(services, "m")
    prediction_id = new_id()
    first = services.feedback.record_sync(
        "m", [FeedbackInput(prediction_id=prediction_id, label="1", feedback_id="c-1")]
    )
    again = services.feedback.record_sync(
        "m", [FeedbackInput(prediction_id=prediction_id, label="1", feedback_id="c-1")]
    )
    assert first == again
    assert first[0].client_id == "c-1"
    assert feedback_table_count(services) == 1
    assert services.feedback.get("m", "c-1") == first[0]
    assert services.feedback.get("m", first[0].id) == first[0]


def test_a_key_reused_with_other_content_is_a_conflict_and_the_first_event_stays(
    services: Services, make_model: CreateModel
) -> None:
    make_model(services, "m")
    prediction_id = new_id()
    (first,) = services.feedback.record_sync(
        "m", [FeedbackInput(prediction_id=prediction_id, label="1", feedback_id="k")]
    )
    with pytest.raises(IdempotencyConflictError) as conflict:
        services.feedback.record_sync("m", [FeedbackInput(prediction_id=prediction_id, label="0", feedback_id="k")])
    assert (conflict.value.key, conflict.value.existing_id) == ("k", first.id)
    (retry,) = services.feedback.record_sync(
        "m", [FeedbackInput(prediction_id=prediction_id, label="1", feedback_id="k")]
    )
    assert retry == first
    assert services.feedback.get("m", "k").label == "1"
    assert feedback_table_count(services) == 1


def test_a_client_id_repeated_inside_one_batch_refuses_the_batch(services: Services, make_model: CreateModel) -> None:
    """record_sync validates all or nothing: a repeated key is an error like any other."""
    make_model(services, "m")
    item = FeedbackInput(text="Battery died after a day.", label="0", feedback_id="dup")
    with pytest.raises(DuplicateInBatchError, match="repeats item 0"):
        services.feedback.record_sync("m", [item, item])
    assert feedback_table_count(services) == 0


def test_feedback_for_unknown_prediction_is_kept_and_joined_later(services: Services, make_model: CreateModel) -> None:
    make_model(services, "m")
    prediction_id = new_id()
    (fb,) = services.feedback.record_sync("m", [FeedbackInput(prediction_id=prediction_id, label="0")])
    assert fb.prediction_id == prediction_id

    (row,) = feedback_rows(services)
    assert row.id == fb.id and row.served is None
    found, counts = derive_examples([row], ("0", "1"))
    assert found == [] and counts["pending_prediction"] == 1

    # A retrain now has nothing to learn from it: the snapshot is the bootstrap one.
    pending = services.training.retrain("m", actor="test")
    assert pending.snapshot == services.registry.version("m", 1).snapshot_hash

    # The prediction reaches the log afterwards (e.g. another replica's log flushed late).
    text = "Worst purchase I have made, it broke within a week."
    services.ingest.start()
    services.ingest.log_prediction(
        {
            "id": prediction_id,
            "model": "m",
            "version": 1,
            "route": "champion",
            "text": text,
            "answer": '{"label": "1", "probabilities": {"0": 0.4, "1": 0.6}}',
            "subject": None,
            "created_at": services.clock.now(),
            "latency_ms": 0.1,
        }
    )
    wait_for(lambda: feedback_rows(services)[0].served, timeout=10, what="the prediction log flush")
    (row,) = feedback_rows(services)
    assert row.served is not None
    assert (row.served.text, predicted_label(row), row.served.version) == (text, "1", 1)

    joined = services.training.retrain("m", actor="test")
    counts = services.registry.snapshot(joined.snapshot).counts  # type: ignore[union-attr]
    assert "pending_prediction" not in counts["feedback"]
    assert counts["feedback"]["examples"] == 1
    lines = snapshot_lines(services, joined.snapshot)
    assert {"text": text, "label": "0", "feedback_id": fb.id} in [
        {k: line[k] for k in ("text", "label", "feedback_id")} for line in lines
    ]


def test_feedback_for_unknown_model_is_not_found(services: Services) -> None:
    with pytest.raises(NotFoundError):
        services.feedback.record_sync("nope", [FeedbackInput(text="hello", label="1")])


# -- retraining ------------------------------------------------------------------------------


def test_retrain_with_too_little_data_fails_and_keeps_the_champion(services: Services, make_model: CreateModel) -> None:
    make_model(services, "m", policy=Policy.of(min_train_examples=5000))
    before = services.registry.deployment("m")
    with pytest.raises(InsufficientDataError, match="min_train_examples"):
        services.training.retrain("m", actor="test")
    assert services.registry.deployment("m") == before
    assert [v.version for v in services.registry.versions("m")] == [1]

    # Through the job queue: the job fails with the reason; the champion still serves.
    job = services.jobs.enqueue("m", "retrain", requested_by="test")
    assert services.worker.run_once() is True
    done = services.jobs.get(job.id)
    assert done.status == JobStatus.FAILED
    assert "min_train_examples" in (done.error or "")
    assert services.registry.events("m")[0].kind == "retrain_failed"
    assert services.registry.deployment("m").champion_version == 1
    assert services.predictions.predict("m", "Great phone.").version == 1
    services.jobs.enqueue("m", "retrain", requested_by="test")  # a failed job no longer blocks the queue


def test_promote_and_rollback_record_events_and_swap_the_served_version(
    services: Services, services_factory: Callable[..., Services], make_model: CreateModel
) -> None:
    make_model(services, "m")
    outcome = services.training.retrain("m", actor="test")  # no feedback: the gate rejects it
    assert (outcome.version, outcome.promoted) == (2, False)
    v2 = services.registry.version("m", 2)
    assert v2.status == VersionStatus.REJECTED
    assert v2.metrics["recent"] == {"n": 0}  # no feedback, no recent holdout
    assert v2.metrics["golden"]["roc_auc_ci95"] is not None and v2.metrics["latency"]["n"] > 0

    other = services_factory()  # another process's view of the same database
    other.start(worker=False)
    assert other.cache.champion("m").version == 1

    with pytest.raises(GateRejectedError, match="rejected by the gate"):  # a person must force it
        services.registry.promote("m", 2, actor="tester")
    deployment = services.registry.promote("m", 2, actor="tester", reason="manual override", force=True)
    assert (deployment.champion_version, deployment.previous_version) == (2, 1)
    assert services.cache.champion("m").version == 2
    assert services.predictions.predict("m", "Loved it.").version == 2
    event = services.registry.events("m")[0]
    assert (event.kind, event.version, event.actor, event.reason) == ("promoted", 2, "tester", "manual override")
    assert event.data == {"previous": 1}
    assert services.registry.version("m", 1).status == VersionStatus.RETIRED
    assert services.registry.version("m", 2).status == VersionStatus.CHAMPION
    wait_for(lambda: other.cache.champion("m").version == 2, timeout=10, what="the other process to see version 2")

    with pytest.raises(ConflictError, match="already the champion"):
        services.registry.promote("m", 2, actor="tester", force=True)

    deployment = services.registry.rollback("m", actor="tester", reason="bad outputs")
    assert (deployment.champion_version, deployment.previous_version) == (1, None)
    assert services.cache.champion("m").version == 1
    event = services.registry.events("m")[0]
    assert (event.kind, event.version, event.reason) == ("rolled_back", 1, "bad outputs")
    assert event.data == {"from": 2, "to": 1}
    assert services.registry.version("m", 1).status == VersionStatus.CHAMPION
    assert services.registry.version("m", 2).status == VersionStatus.RETIRED
    wait_for(lambda: other.cache.champion("m").version == 1, timeout=10, what="the other process to see the rollback")

    with pytest.raises(ConflictError, match="no previous champion"):
        services.registry.rollback("m", actor="tester")

    # The trail, followed from an event: oldest first after it; filtered by kind: newest first.
    trail = services.registry.events("m", 100)
    first = trail[-1]
    after = services.registry.events("m", 100, after_id=first.id)
    assert [e.id for e in after] == sorted(e.id for e in trail if e.id > first.id)
    kinds = services.registry.events("m", 100, kinds=["promoted", "rolled_back"])
    assert [e.kind for e in kinds] == ["rolled_back", "promoted", "promoted"]  # v2 by hand, v1 at init
    with pytest.raises(NotFoundError):
        services.registry.events("nope")


def test_one_retrain_per_model_at_a_time(services: Services, make_model: CreateModel) -> None:
    make_model(services, "m")
    make_model(services, "n", domain="amazon_cells")
    job = services.jobs.enqueue("m", "retrain", requested_by="test")
    with pytest.raises(ConflictError, match=job.id):
        services.jobs.enqueue("m", "retrain", requested_by="test")
    services.jobs.enqueue("n", "retrain", requested_by="test")  # another model is independent
    while services.worker.run_once():
        pass
    assert services.jobs.get(job.id).status == JobStatus.SUCCEEDED
    assert services.jobs.active("m", "retrain") is None
    services.jobs.enqueue("m", "retrain", requested_by="test")


def test_enqueue_for_unknown_model_is_not_found(services: Services) -> None:
    with pytest.raises(NotFoundError):
        services.jobs.enqueue("nope", "retrain", requested_by="test")


def test_corrupt_artifact_is_refused_and_the_champion_keeps_serving(
    services: Services, make_model: CreateModel
) -> None:
    make_model(services, "m")
    services.training.retrain("m", actor="test")
    v2 = services.registry.version("m", 2)
    (artifact_dir(services, v2) / "model.joblib").write_bytes(b"not a model at all")
    before = services.registry.deployment("m")
    events_before = services.registry.events("m")

    with pytest.raises(ArtifactError, match="SHA-256"):
        services.registry.promote("m", 2, actor="tester", force=True)

    assert services.registry.deployment("m") == before
    assert services.registry.events("m") == events_before
    assert services.registry.version("m", 2).status == VersionStatus.REJECTED
    assert services.cache.champion("m").version == 1
    assert services.predictions.predict("m", "Terrible service.").version == 1


def test_corrupt_champion_artifact_makes_a_fresh_process_report_unavailable(
    services: Services, services_factory: Callable[..., Services], make_model: CreateModel
) -> None:
    v1 = make_model(services, "m")
    services.cache.serve()  # this process serves: version 1 is loaded
    (artifact_dir(services, v1) / "model.joblib").write_bytes(b"\x00" * 64)
    assert services.predictions.predict("m", "Good.").version == 1  # already loaded here: keeps serving

    fresh = services_factory()
    with pytest.raises(ModelUnavailableError, match="refuses to load"):
        fresh.predictions.predict("m", "Good.")
    health = fresh.health()
    assert health["status"] == "degraded"
    assert "m" in health["unavailable"]  # type: ignore[operator]


# -- triggers --------------------------------------------------------------------------------


def test_trigger_fires_after_retrain_every_labelled_events_and_respects_cooldown(
    services_factory: Callable[..., Services], make_model: CreateModel
) -> None:
    clock = FakeClock()
    svc = services_factory(clock=clock)
    make_model(svc, "m", policy=Policy.of(retrain_every=5, cooldown_seconds=300))
    clock.advance(1)

    svc.feedback.record_sync("m", examples(4))
    assert svc.worker.check_triggers() == []
    svc.feedback.record_sync("m", examples(1, offset=4))
    assert svc.worker.check_triggers() == ["m"]
    job = svc.jobs.active("m", "retrain")
    assert job is not None and job.requested_by == "trigger:feedback_volume"
    assert svc.worker.check_triggers() == []  # one queued already

    assert svc.worker.run_once() is True
    assert svc.jobs.get(job.id).status == JobStatus.SUCCEEDED
    assert svc.registry.get_model("m").last_retrain_at == clock.now()

    clock.advance(1)
    svc.feedback.record_sync("m", examples(5, offset=5))
    assert svc.worker.check_triggers() == []  # in cooldown (1 s of 300)
    clock.advance(298)
    assert svc.worker.check_triggers() == []  # 299 s
    clock.advance(1)
    assert svc.worker.check_triggers() == ["m"]  # 300 s: cooldown over


def test_feedback_already_in_a_snapshot_does_not_count_toward_the_next_trigger(
    services_factory: Callable[..., Services], make_model: CreateModel
) -> None:
    clock = FakeClock()
    svc = services_factory(clock=clock)
    make_model(svc, "m", policy=Policy.of(retrain_every=3, cooldown_seconds=0))
    clock.advance(1)
    svc.feedback.record_sync("m", examples(3))
    assert svc.worker.check_triggers() == ["m"]
    clock.advance(1)  # the retrain runs later than the feedback (what is stamped at its cutoff is the next one's)
    svc.worker.run_once()
    clock.advance(1)
    assert svc.worker.check_triggers() == []
    svc.feedback.record_sync("m", examples(2, offset=3))
    assert svc.worker.check_triggers() == []
    svc.feedback.record_sync("m", examples(1, offset=5))
    assert svc.worker.check_triggers() == ["m"]


def test_feedback_stamped_at_the_retrain_cutoff_is_in_the_next_snapshot_only_and_counted_as_new(
    services_factory: Callable[..., Services], make_model: CreateModel
) -> None:
    """The retrain's window is half-open: its snapshot takes feedback strictly before its
    cutoff; what is stamped at the cutoff (read by the retrain or arriving just after it at the
    same instant, as in a replay's simulated time) is counted by the volume trigger and judged as
    unseen by the next retrain, never both trained on and judged, never lost."""
    clock = FakeClock()
    svc = services_factory(clock=clock)
    make_model(svc, "m", policy=Policy.of(retrain_every=6, cooldown_seconds=0, recent_blocks=2))
    clock.advance(1)
    before = svc.feedback.record_sync("m", examples(10))
    clock.advance(1)
    cutoff = clock.now()
    read = svc.feedback.record_sync("m", examples(3, offset=10))  # stamped at the cutoff, before the read
    first = svc.training.retrain("m", actor="test")
    late = svc.feedback.record_sync("m", examples(3, offset=13))  # the same instant, after the read

    assert svc.registry.get_model("m").retrain_watermark == cutoff
    trained = {line["feedback_id"] for line in snapshot_lines(svc, first.snapshot)} - {None}
    assert trained == {fb.id for fb in before}
    assert svc.worker.check_triggers() == ["m"]  # the six at the cutoff are new: retrain_every reached

    if not first.promoted:  # whatever the gate said: the boundary is what is tested
        svc.registry.promote("m", first.version, actor="test", reason="test", force=True)
    clock.advance(1)
    second = svc.training.retrain("m", actor="test")
    lines = snapshot_lines(svc, second.snapshot)
    assert {line["feedback_id"] for line in lines} - {None} == {fb.id for fb in [*before, *read, *late]}
    snap = svc.registry.snapshot(second.snapshot)
    assert snap is not None and snap.counts["unseen_by_champion"] == 6
    judged = {line["feedback_id"] for line in lines if line["validation_block"] is not None}
    assert judged <= {fb.id for fb in [*read, *late]}  # never judged on what the champion trained on
