"""Retrain trigger decisions, with a fake clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from learnloop.clock import FakeClock
from learnloop.domain import Finding, Model
from learnloop.policy import Policy
from learnloop.triggers import finding_retrain, retrain_reason, scheduled_reason


def model(
    clock: FakeClock, *, every: int = 100, cooldown: float = 300.0, last_retrain_ago: float | None = None
) -> Model:
    last = None
    if last_retrain_ago is not None:
        past = FakeClock(clock.now())
        past.advance(-last_retrain_ago)
        last = past.now()
    return Model(
        name="m",
        task="classification",
        labels=("0", "1"),
        family="tfidf-logreg",
        params={},
        policy=Policy.of(retrain_every=every, cooldown_seconds=cooldown),
        created_at=clock.now(),
        last_retrain_at=last,
    )


def test_fires_at_retrain_every_and_not_before() -> None:
    clock = FakeClock()
    m = model(clock, every=100)
    assert retrain_reason(m, 99, clock.now(), job_active=False) is None
    reason = retrain_reason(m, 100, clock.now(), job_active=False)
    assert reason is not None and "100 new labelled feedback events" in reason
    assert retrain_reason(m, 5_000, clock.now(), job_active=False) is not None


def test_never_fires_while_a_retrain_is_queued_or_running() -> None:
    clock = FakeClock()
    assert retrain_reason(model(clock), 1_000, clock.now(), job_active=True) is None


@pytest.mark.parametrize(
    ("ago", "fires"), [(0.0, False), (1.0, False), (299.999, False), (300.0, True), (86_400.0, True)]
)
def test_cooldown_counts_from_the_last_retrain(ago: float, fires: bool) -> None:
    clock = FakeClock()
    m = model(clock, cooldown=300.0, last_retrain_ago=ago)
    assert (retrain_reason(m, 100, clock.now(), job_active=False) is not None) is fires


def test_cooldown_passes_as_the_clock_moves() -> None:
    clock = FakeClock()
    m = model(clock, cooldown=60.0, last_retrain_ago=0.0)
    assert retrain_reason(m, 100, clock.now(), job_active=False) is None
    clock.advance(59)
    assert retrain_reason(m, 100, clock.now(), job_active=False) is None
    clock.advance(1)
    assert retrain_reason(m, 100, clock.now(), job_active=False) is not None


def test_zero_cooldown_and_never_retrained_fire_on_volume_alone() -> None:
    clock = FakeClock()
    assert retrain_reason(model(clock, cooldown=0.0, last_retrain_ago=0.0), 100, clock.now(), False) is not None
    assert retrain_reason(model(clock, last_retrain_ago=None), 100, clock.now(), False) is not None


def scheduled(clock: FakeClock, schedule: str, *, last_retrain_ago: float | None = None) -> Model:
    m = model(clock, last_retrain_ago=last_retrain_ago)
    return Model(**{**m.__dict__, "policy": m.policy.updated({"retrain_schedule": schedule})})


def test_a_schedule_fires_once_its_next_time_after_the_last_retrain_has_come() -> None:
    from datetime import UTC, datetime

    clock = FakeClock(datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
    m = scheduled(clock, "0 3 * * *")  # created at 02:00, never retrained
    assert scheduled_reason(m, clock.now(), job_active=False) is None
    clock.advance(3600)  # 03:00
    reason = scheduled_reason(m, clock.now(), job_active=False)
    assert reason is not None and "0 3 * * *" in reason and "03:00" in reason
    assert scheduled_reason(m, clock.now(), job_active=True) is None
    assert scheduled_reason(m, clock.now(), job_active=False, rollout_active=True) is None
    retrained = Model(**{**m.__dict__, "last_retrain_at": clock.now()})
    clock.advance(23 * 3600)  # 02:00 the next day
    assert scheduled_reason(retrained, clock.now(), job_active=False) is None
    clock.advance(3600)
    assert scheduled_reason(retrained, clock.now(), job_active=False) is not None
    assert scheduled_reason(model(clock), clock.now(), job_active=False) is None  # no schedule


@pytest.mark.parametrize("bad", ["every day", "61 * * * *", "* * *"])
def test_a_bad_cron_expression_is_refused_with_its_field(bad: str) -> None:
    from learnloop.errors import ValidationError

    with pytest.raises(ValidationError) as err:
        Policy.of(retrain_schedule=bad)
    assert err.value.field == "policy.retrain_schedule"


def test_what_monitoring_and_privacy_find_calls_for_a_retrain_only_as_the_policy_says() -> None:
    m = model(FakeClock())  # retrain_on_accuracy_drop is on by default, retrain_on_drift off
    drop, drift = Finding("m", "accuracy_drop", "online accuracy low"), Finding("m", "drift", "oov drifted")
    assert finding_retrain(m, drop, champion=1, rollout_active=False) == (
        "trigger:accuracy_drop",
        "online accuracy low",
    )
    off = replace(m, policy=Policy.of(retrain_on_accuracy_drop=False))
    assert finding_retrain(off, drop, champion=1, rollout_active=False) is None

    assert finding_retrain(m, drift, champion=1, rollout_active=False) is None
    on = replace(m, policy=Policy.of(retrain_on_drift=True))
    assert finding_retrain(on, drift, champion=1, rollout_active=False) == ("trigger:drift", "oov drifted")
    assert finding_retrain(on, drift, champion=1, rollout_active=True) is None  # the experiment runs on

    erased = Finding("m", "erasure", "retrain without an erased subject", versions=(2, 3))
    assert finding_retrain(m, erased, champion=3, rollout_active=True) == (
        "privacy:erasure",
        "retrain without an erased subject",
    )
    assert finding_retrain(m, erased, champion=1, rollout_active=False) is None  # the champion never saw it
    assert finding_retrain(m, erased, champion=None, rollout_active=False) is None


def test_a_generative_reason_counts_training_events() -> None:
    clock = FakeClock()
    reason = retrain_reason(model(clock, every=100), 100, clock.now(), job_active=False, counted="training events")
    assert reason is not None and reason.startswith("100 new training events") and "labelled" not in reason


def test_a_rating_drop_queues_a_retrain_only_with_min_mean_rating_set_and_no_rollout() -> None:
    low = Finding("m", "rating_drop", "mean rating 2.0 shown below 3.5")
    assert finding_retrain(model(FakeClock()), low, champion=1, rollout_active=False) is None  # off by default
    on = replace(model(FakeClock()), policy=Policy.of(min_mean_rating=3.5))
    assert finding_retrain(on, low, champion=1, rollout_active=False) == ("trigger:rating_drop", low.reason)
    assert finding_retrain(on, low, champion=1, rollout_active=True) is None  # the experiment runs on


@pytest.mark.parametrize("bad", [-1, 0.5, 1.0, 5.5])
def test_min_mean_rating_is_off_or_on_the_rating_scale(bad: float) -> None:
    from learnloop.errors import ValidationError

    with pytest.raises(ValidationError) as err:
        Policy.of(min_mean_rating=bad)
    assert err.value.field == "policy.min_mean_rating"


def test_what_the_volume_trigger_counts_is_the_tasks_training_feedback() -> None:
    from learnloop.domain import FeedbackKind as K
    from learnloop.tasks import get_task

    classifier = model(FakeClock())
    counted = get_task("classification").training_feedback(classifier)
    assert counted.kinds == {K.LABEL, K.EXAMPLE, K.THUMBS, K.RATING} and not counted.signals
    generative = replace(classifier, task="generation", labels=(), policy=Policy.of(implicit_outcomes="copied=good"))
    counted = get_task("generation").training_feedback(generative)
    assert counted.kinds == {K.RATING, K.THUMBS, K.CORRECTION, K.PREFERENCE}
    assert counted.signals == {"copied"} and counted.described == "training events"
    assert not get_task("generation").training_feedback(replace(generative, policy=Policy())).signals


def test_a_generative_model_starts_retraining_every_100_unless_told_otherwise() -> None:
    from learnloop.models.creation import default_policy

    assert default_policy("classification").triggers.retrain_every == 200
    assert default_policy("generation").triggers.retrain_every == 100
    assert default_policy("generation").updated({"retrain_every": 7}).triggers.retrain_every == 7
