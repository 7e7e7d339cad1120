"""Canary, shadow and A/B rollouts on a real database (SQLite file and PostgreSQL), with real
models trained on the shipped UCI sentences and live feedback from simulated users.

The broken challenger is trained on the same restaurant reviews as the champion with every
label flipped; the better one learns phone and film reviews the champion never saw, and is
judged on other phone and film reviews. The controller looks after every batch of traffic, as
the worker does every few seconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from conftest import register_version, uci_rows
from learnloop.curation import split_golden
from learnloop.domain import (
    FeedbackInput,
    ModelVersion,
    RolloutStatus,
    Strategy,
    VersionStatus,
)
from learnloop.errors import ConflictError, GateRejectedError, NotFoundError, ValidationError
from learnloop.feedback.service import PredictionResult
from learnloop.policy import Policy
from learnloop.services import Services

CreateModel = Callable[..., ModelVersion]
FAST = {"canary_step_seconds": 0, "canary_min_feedback": 30}


def flipped(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(text, "1" if label == "0" else "0") for text, label in rows]


def other_domains(seed: int = 0) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Phone and film reviews: (training rows for a better version, traffic rows it never saw)."""
    pool = uci_rows("amazon_cells") + uci_rows("imdb")
    random.Random(seed).shuffle(pool)
    return pool[:1000], pool[1000:]


def serve(
    services: Services,
    rows: list[tuple[str, str]],
    *,
    model: str = "m",
    subjects: int | None = None,
    feedback: bool = True,
    look_every: int = 25,
    until_ended: bool = True,
) -> list[PredictionResult]:
    """Users ask, then correct every answer; the controller looks after each batch. Stops after
    the batch in which the model's rollout ended (when ``until_ended``)."""
    results: list[PredictionResult] = []
    pending: list[FeedbackInput] = []
    for i, (text, label) in enumerate(rows):
        subject = f"user-{i % subjects}" if subjects else None
        result = services.predictions.predict(model, text, subject)
        results.append(result)
        pending.append(FeedbackInput(prediction_id=result.prediction_id, label=label, subject=subject))
        if (i + 1) % look_every == 0:
            if feedback:
                services.feedback.record_sync(model, pending)
            pending = []
            services.ingest.flush()
            services.shadow.drain()
            services.rollouts.look(model)
            if until_ended and services.rollouts.active(model) is None:
                break
    return results


def broken_canary_setup(services: Services, make_model: CreateModel, **changes: object) -> int:
    make_model(services, "m")
    train, _ = split_golden(uci_rows("yelp"), 0.2, 0)
    broken = register_version(services, "m", flipped(train), note="trained on flipped labels")
    rollout = services.rollouts.start(
        "m", broken.version, "canary", actor="test", changes={"canary_steps": "20,50", **FAST, **changes}
    )
    return rollout.id


def test_a_broken_canary_is_rolled_back_by_itself_and_no_request_fails(
    services: Services, make_model: CreateModel
) -> None:
    rollout_id = broken_canary_setup(services, make_model)
    assert services.cache.route("m").rollout is not None
    results = serve(services, uci_rows("amazon_cells"), subjects=300)  # sticky subjects: reproducible

    rollout = services.rollouts.get("m", rollout_id)
    assert rollout.status == RolloutStatus.ROLLED_BACK, rollout.stats.get("reason")
    assert rollout.reason is not None and rollout.reason.startswith("shown worse"), rollout.reason
    test = rollout.stats["test"]
    assert test["ci_high"] < 0 and test["n_a"] >= 30 and test["n_b"] >= 30
    assert test["rate_b"] < 0.5 < test["rate_a"]
    assert len(results) < 1000  # decided before the traffic ran out
    # The canary really served (20%, then 50% if it stepped before it leaned worse); then the
    # champion took every request back.
    canary = [r for r in results if r.route == "canary"]
    assert canary and all(r.version == 2 for r in canary)
    assert 0.1 < len(canary) / len(results) < 0.5
    assert services.registry.version("m", 2).status == VersionStatus.REJECTED
    assert services.registry.deployment("m").champion_version == 1
    after = serve(services, uci_rows("imdb")[:50], until_ended=False)
    assert {(r.version, r.route) for r in after} == {(1, "champion")}
    (event,) = services.registry.events("m", 10, kinds=["rolled_back"])
    assert (event.version, event.actor, event.data["rollout"]) == (2, f"rollout:{rollout_id}", rollout_id)
    assert event.data["stats"]["test"]["ci_high"] < 0


def test_a_better_canary_steps_up_and_is_promoted(services: Services, make_model: CreateModel) -> None:
    yelp_train, yelp_golden = split_golden(uci_rows("yelp"), 0.2, 0)
    services.registry.create_model(
        name="m",
        labels=["0", "1"],
        family="tfidf-logreg",
        params={},
        policy=Policy(),
        train=yelp_train[:60],  # a weak champion: sixty restaurant reviews
        golden=yelp_golden,
        source="uci:yelp",
    )
    services.training.bootstrap("m")
    train, traffic = other_domains()
    better = register_version(services, "m", yelp_train + train, note="knows phones and films")
    # The strict rule: promoted only once the live test shows it not worse than the margin.
    changes = {"canary_steps": "10,50", "canary_require": "non_inferior", **FAST}
    rollout = services.rollouts.start("m", better.version, "canary", actor="test", changes=changes)
    assert rollout.share == pytest.approx(0.10)

    results = serve(services, traffic, subjects=300)  # sticky subjects: reproducible

    rollout = services.rollouts.get("m", rollout.id)
    assert rollout.status == RolloutStatus.PROMOTED, rollout.stats.get("reason")
    assert rollout.stats["test"]["ci_low"] > -rollout.settings.rollout.canary_margin
    steps = services.registry.events("m", 20, kinds=["rollout_step"])
    assert [(e.data["from"], e.data["to"]) for e in steps] == [(0.1, 0.5)]
    deployment = services.registry.deployment("m")
    assert (deployment.champion_version, deployment.previous_version) == (better.version, 1)
    assert services.registry.version("m", better.version).status == VersionStatus.CHAMPION
    (promoted,) = [e for e in services.registry.events("m", 20, kinds=["promoted"]) if e.version == better.version]
    assert promoted.data["rollout"] == rollout.id and promoted.data["stats"]["decision"] == "promote"
    assert {r.version for r in results} == {1, better.version}
    assert services.predictions.predict("m", traffic[0][0]).version == better.version


def test_a_broken_shadow_never_answers_a_client_and_is_rolled_back(services: Services, make_model: CreateModel) -> None:
    make_model(services, "m")
    train, _ = split_golden(uci_rows("yelp"), 0.2, 0)
    broken = register_version(services, "m", flipped(train), note="trained on flipped labels")
    rollout = services.rollouts.start("m", broken.version, Strategy.SHADOW, actor="test", changes=FAST)
    assert rollout.share == 1.0

    results = serve(services, uci_rows("amazon_cells"))

    assert {(r.version, r.route) for r in results} == {(1, "champion")}
    rollout = services.rollouts.get("m", rollout.id)
    assert rollout.status == RolloutStatus.ROLLED_BACK
    test = rollout.stats["test"]
    assert test["design"] == "paired" and test["n_a"] == test["n_b"] >= 30
    assert test["ci_high"] < 0 and test["rate_b"] < 0.5
    assert services.registry.version("m", broken.version).status == VersionStatus.REJECTED


def test_every_replica_sends_a_subject_to_the_same_arm(
    services: Services, services_factory: Callable[..., Services], make_model: CreateModel
) -> None:
    make_model(services, "m")
    train, _ = split_golden(uci_rows("yelp"), 0.2, 0)
    other = register_version(services, "m", train[:300], note="another version")
    services.rollouts.start("m", other.version, "ab", actor="test", share=0.5)
    replica = services_factory()  # another process's view of the same database
    text = uci_rows("imdb")[0][0]
    arms: dict[str, set[int]] = {}
    for i in range(200):
        subject = f"subject-{i}"
        for s in (services, replica, services, replica):
            arms.setdefault(subject, set()).add(s.predictions.predict("m", text, subject).version)
    assert all(len(versions) == 1 for versions in arms.values())
    on_b = sum(versions == {other.version} for versions in arms.values())
    assert 70 <= on_b <= 130  # Binomial(200, 0.5): outside this range with probability < 1e-4


def test_pause_holds_the_step_and_rollback_takes_the_challenger_off_traffic_at_once(
    services: Services, make_model: CreateModel
) -> None:
    rollout_id = broken_canary_setup(services, make_model, canary_min_feedback=10_000, canary_max_feedback=10_000)
    services.rollouts.pause("m", rollout_id, actor="tester", reason="a look first")
    with pytest.raises(ConflictError):
        services.rollouts.pause("m", rollout_id, actor="tester")
    assert services.rollouts.look("m").action == "hold"  # type: ignore[union-attr]
    assert services.rollouts.get("m", rollout_id).share == pytest.approx(0.2)
    services.rollouts.resume("m", rollout_id, actor="tester")
    assert services.rollouts.look("m").action == "hold"  # type: ignore[union-attr]  # no request reached it yet
    for i, (text, _) in enumerate(uci_rows("amazon_cells")[:50]):
        services.predictions.predict("m", text, f"user-{i}")
    services.ingest.flush()
    assert services.rollouts.look("m").action == "step"  # type: ignore[union-attr]
    assert services.cache.route("m").rollout.share == pytest.approx(0.5)  # type: ignore[union-attr]

    deployment = services.registry.rollback("m", actor="tester", reason="enough")
    assert deployment.champion_version == 1 and deployment.previous_version is None
    assert services.rollouts.get("m", rollout_id).status == RolloutStatus.ROLLED_BACK
    assert services.cache.route("m").rollout is None  # this process: no wait for the poll
    assert services.registry.version("m", 2).status == VersionStatus.REJECTED
    with pytest.raises(ConflictError):
        services.rollouts.resume("m", rollout_id, actor="tester")
    kinds = [e.kind for e in services.registry.events("m", 10)]
    assert kinds[:4] == ["rolled_back", "rollout_step", "rollout_resumed", "rollout_paused"]


def test_promoting_or_starting_over_a_running_rollout_ends_it(services: Services, make_model: CreateModel) -> None:
    first = broken_canary_setup(services, make_model)
    train, _ = split_golden(uci_rows("yelp"), 0.2, 0)
    third = register_version(services, "m", train[:400], note="another")
    second = services.rollouts.start("m", third.version, "canary", actor="tester")
    assert services.rollouts.get("m", first).status == RolloutStatus.STOPPED
    assert services.registry.version("m", 2).status == VersionStatus.CANDIDATE
    services.rollouts.promote("m", second.id, actor="tester", reason="looks fine")
    assert services.rollouts.get("m", second.id).status == RolloutStatus.PROMOTED
    assert services.registry.deployment("m").champion_version == third.version
    assert services.rollouts.active("m") is None
    with pytest.raises(ConflictError):
        services.rollouts.stop("m", second.id, actor="tester")


def test_bad_rollout_requests_are_refused(services: Services, make_model: CreateModel) -> None:
    make_model(services, "m")
    with pytest.raises(ValidationError):
        services.rollouts.start("m", 1, "blue-green", actor="t")
    with pytest.raises(NotFoundError):
        services.rollouts.start("m", 9, "canary", actor="t")
    with pytest.raises(ConflictError):  # the champion against itself
        services.rollouts.start("m", 1, "canary", actor="t")
    train, _ = split_golden(uci_rows("yelp"), 0.2, 0)
    v2 = register_version(services, "m", train[:300], note="x")
    with pytest.raises(ValidationError):
        services.rollouts.start("m", v2.version, "canary", actor="t", changes={"canary_steps": "50,20"})
    with pytest.raises(ValidationError):
        services.rollouts.start("m", v2.version, "canary", actor="t", baseline=1)
    assert services.rollouts.active("m") is None


def test_a_version_the_gate_rejected_goes_on_traffic_only_when_forced_and_the_refusal_says_why(
    services: Services, make_model: CreateModel
) -> None:
    make_model(services, "m")
    train, _ = split_golden(uci_rows("yelp"), 0.2, 0)
    reasons = ["golden: -1.0 points [-3.0, +1.0], ok", "recent: +0.5 points, NOT shown better (McNemar p=0.75, n=41)"]
    rejected = register_version(
        services, "m", train[:300], note="rejected", verdict={"passed": False, "reasons": reasons}
    )
    for attempt in (
        lambda: services.rollouts.start("m", rejected.version, "canary", actor="t"),
        lambda: services.registry.promote("m", rejected.version, actor="t"),
    ):
        with pytest.raises(GateRejectedError) as refused:
            attempt()
        assert "NOT shown better (McNemar p=0.75, n=41)" in refused.value.message
        assert "golden" not in refused.value.message  # the failing check leads, not the passing ones
        assert "--force" in refused.value.message
    assert services.rollouts.active("m") is None
    assert services.registry.deployment("m").champion_version == 1

    forced = services.rollouts.start("m", rejected.version, "canary", actor="t", force=True)
    assert forced.status == RolloutStatus.RUNNING
    services.rollouts.promote("m", forced.id, actor="t")  # the rollout's own promotion: forced when started
    assert services.registry.deployment("m").champion_version == rejected.version


def test_a_passing_retrain_goes_to_a_canary_when_the_policy_says_so(
    services: Services, make_model: CreateModel
) -> None:
    make_model(services, "m", policy=Policy.of(rollout="canary", retrain_every=10_000, slice_fields="domain"))
    tagged = [(t, lab, "phones") for t, lab in uci_rows("amazon_cells")[:400]]
    tagged += [(t, lab, "films") for t, lab in uci_rows("imdb")[:400]]
    random.Random(0).shuffle(tagged)
    for start in range(0, 800, 200):
        batch = [FeedbackInput(text=t, label=lab, metadata={"domain": d}) for t, lab, d in tagged[start : start + 200]]
        services.feedback.record_sync("m", batch)
    outcome = services.training.retrain("m", actor="test")
    assert outcome.verdict["passed"], outcome.verdict["reasons"]
    sliced = {c["set_name"]: c["n"] for c in outcome.verdict["comparisons"] if c["set_name"].startswith("recent[")}
    assert set(sliced) == {"recent[domain=films]", "recent[domain=phones]"}
    recent_n = next(c["n"] for c in outcome.verdict["comparisons"] if c["set_name"] == "recent")
    assert sum(sliced.values()) == recent_n
    assert any(r.startswith("golden set, paired bootstrap differences: macro-F1") for r in outcome.verdict["reasons"])
    assert not outcome.promoted and outcome.rollout is not None
    rollout = services.rollouts.get("m", outcome.rollout)
    assert (rollout.strategy, rollout.version, rollout.share) == (Strategy.CANARY, outcome.version, 0.05)
    assert services.registry.version("m", outcome.version).status == VersionStatus.CHALLENGER
    assert services.registry.deployment("m").champion_version == 1
