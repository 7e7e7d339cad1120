"""Drift checks wired into the loop, on a real database (SQLite file and PostgreSQL), with a real
model trained on the shipped UCI Yelp sentences.

Version 1 learns 500 Yelp sentences; its golden set (200 others) is its drift reference. Traffic
is either 300 further Yelp sentences it never saw (the same source: no drift) or 300 IMDB movie
sentences (a new domain: its words and features drift).
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from conftest import register_version, uci_rows
from learnloop.clock import FakeClock
from learnloop.domain import DriftCheck
from learnloop.drift.reference import DriftReference
from learnloop.errors import ConflictError, NotFoundError
from learnloop.policy import Policy
from learnloop.services import Services

WINDOW = 300


def yelp_split() -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """(train, golden, held-out texts) of the shipped Yelp sentences, shuffled with a fixed seed."""
    rows = uci_rows("yelp")
    random.Random(0).shuffle(rows)
    return rows[:500], rows[500:700], [t for t, _ in rows[700:]]


def imdb_texts() -> list[str]:
    rows = uci_rows("imdb")
    random.Random(0).shuffle(rows)
    return [t for t, _ in rows[:WINDOW]]


def create(services: Services, name: str = "m", **policy: object) -> None:
    train, golden, _ = yelp_split()
    services.registry.create_model(
        name=name,
        labels=["0", "1"],
        family="tfidf-logreg",
        params={},
        policy=Policy.of(drift_window=WINDOW, **policy),  # type: ignore[arg-type]
        train=train,
        golden=golden,
        source="uci:yelp",
    )
    services.training.bootstrap(name)


def serve(services: Services, texts: list[str], model: str = "m") -> None:
    for text in texts:
        services.predictions.predict(model, text)
    services.ingest.flush()


def drift_events(services: Services, model: str = "m") -> list[str]:
    return [e.kind for e in services.registry.events(model) if e.kind.startswith("drift_")]


def sample(services: Services, name: str, **labels: str) -> float | None:
    return services.metrics.registry.get_sample_value(name, labels)


def test_every_version_bootstrapped_or_retrained_gets_a_drift_reference_of_its_golden_set(services: Services) -> None:
    create(services)
    version = services.registry.version("m", 1)
    uri = version.metrics["drift_reference"]
    reference = DriftReference.from_bytes(services.store.get_bytes(uri), uri)
    assert (reference.n, reference.source, reference.labels) == (200, "golden", ("0", "1"))
    assert reference.vocabulary == "model"  # tfidf-logreg exposes its vocabulary
    assert set(reference.summaries) == {"prediction", "confidence", "text_length", "oov", "multivariate"}

    retrained = services.registry.version("m", services.training.retrain("m", actor="test").version)
    assert retrained.metrics["drift_reference"] not in (None, uri)  # its own, whatever the gate said
    assert DriftReference.from_bytes(services.store.get_bytes(retrained.metrics["drift_reference"]), "v2").n == 200


def test_same_source_is_no_drift_a_new_domain_alarms_once_and_queues_a_retrain(services: Services) -> None:
    create(services, retrain_on_drift=True)
    _, _, held_out = yelp_split()

    serve(services, held_out)
    same = services.drift.check("m")
    assert (same.status, same.n, same.version) == ("ok", WINDOW, 1), [r["message"] for r in same.results]
    assert [r["detector"] for r in same.results] == ["prediction", "confidence", "text_length", "oov", "multivariate"]
    by_detector = {r["detector"]: r for r in same.results}
    assert by_detector["multivariate"]["detail"]["features"] == "model"
    assert by_detector["oov"]["detail"]["vocabulary_source"] == "model"
    assert drift_events(services) == []
    assert services.jobs.active("m", "retrain") is None

    serve(services, imdb_texts())  # the window is now the newest 300 answers: all IMDB
    shifted = services.drift.check("m")
    assert shifted.status == "drift" and shifted.n == WINDOW
    assert {"oov", "multivariate"} <= set(shifted.alarms), [r["message"] for r in shifted.results]
    assert drift_events(services) == ["drift_detected"]
    (event,) = [e for e in services.registry.events("m") if e.kind == "drift_detected"]
    assert event.version == 1 and event.data["n"] == WINDOW and event.data["check_id"] == shifted.id
    alarms = {a["detector"]: a for a in event.data["alarms"]}
    assert set(alarms) == set(shifted.alarms)
    assert alarms["oov"]["effect_size"] >= alarms["oov"]["effect_threshold"] and alarms["oov"]["p_value"] < 0.05
    job = services.jobs.active("m", "retrain")
    assert job is not None and job.requested_by == "trigger:drift"

    again = services.drift.check("m")  # still drifting: no second event, no second retrain
    assert again.status == "drift"
    assert drift_events(services) == ["drift_detected"]
    assert [j.id for j in services.jobs.list("m")] == [job.id]

    history = services.drift.history("m", limit=10)
    assert [c.id for c in history] == [again.id, shifted.id, same.id]
    assert history[1] == shifted  # stored as returned
    assert sample(services, "learnloop_drift_alarm", model="m", detector="oov") == 1
    assert sample(services, "learnloop_drift_checks_total", model="m", outcome="drift") == 2
    assert sample(services, "learnloop_drift_checks_total", model="m", outcome="ok") == 1
    effect = sample(services, "learnloop_drift_effect", model="m", detector="multivariate")
    assert effect is not None and effect >= 0.1


def test_drift_queues_no_retrain_unless_the_policy_says_so_and_clears_with_an_event(services: Services) -> None:
    create(services)  # retrain_on_drift defaults to False
    serve(services, imdb_texts())
    assert services.drift.check("m").status == "drift"
    assert drift_events(services) == ["drift_detected"]
    assert services.jobs.list("m") == []

    _, _, held_out = yelp_split()
    serve(services, held_out)  # the newest 300 answers are Yelp again
    cleared = services.drift.check("m")
    assert cleared.status == "ok", [r["message"] for r in cleared.results if r["drifted"]]
    assert drift_events(services) == ["drift_resolved", "drift_detected"]  # newest first
    assert sample(services, "learnloop_drift_alarm", model="m", detector="oov") == 0


def test_a_version_without_a_reference_is_reported_as_such(services: Services) -> None:
    create(services)
    train, _, held_out = yelp_split()
    old = register_version(services, "m", train, note="trained outside the loop, before drift monitoring")
    assert "drift_reference" not in old.metrics
    services.registry.promote("m", old.version, actor="test", reason="an old version")
    serve(services, held_out[:50])

    check = services.drift.check("m")
    assert (check.status, check.version, check.results, check.drifted) == ("no_reference", old.version, [], False)
    assert "no drift reference" in check.message
    assert services.drift.latest("m") == check
    assert drift_events(services) == []
    assert sample(services, "learnloop_drift_checks_total", model="m", outcome="no_reference") == 1


def test_a_model_without_traffic_is_checked_as_insufficient_data(services: Services) -> None:
    create(services)
    check = services.drift.check("m")
    assert (check.status, check.n, check.window_start, check.drifted) == ("insufficient_data", 0, None, False)
    assert all(r["status"] == "insufficient_data" for r in check.results)


def test_periodic_checks_follow_drift_check_seconds(services_factory: object) -> None:
    clock = FakeClock()
    services = services_factory(clock=clock)  # type: ignore[operator]
    assert isinstance(services, Services)
    create(services, drift_check_seconds=60)

    def due() -> list[DriftCheck]:
        return services.drift.check_due()

    assert [c.model for c in due()] == ["m"]  # never checked: due at once
    assert due() == []
    clock.advance(59)
    assert due() == []
    clock.advance(2)
    assert len(due()) == 1

    clock.advance(61)
    services.worker.run_periodic(force=True)  # the worker runs check_due as periodic work "drift"
    latest = services.drift.latest("m")
    assert latest is not None and latest.created_at == clock.now()
    assert len(services.drift.history("m")) == 3

    services.registry.update_policy("m", {"drift_check_seconds": 0}, actor="test")
    clock.advance(timedelta(days=1).total_seconds())
    assert due() == []


def test_a_check_is_due_after_every_n_answers_without_a_timer_and_shows_drifted_texts(
    services_factory: object,
) -> None:
    clock = FakeClock()
    services = services_factory(clock=clock)  # type: ignore[operator]
    assert isinstance(services, Services)
    create(services, drift_check_seconds=0, drift_check_answers=200)
    movies = imdb_texts()
    serve(services, movies[:199])
    assert services.drift.check_due() == []
    clock.advance(1)
    serve(services, movies[199:200])
    (check,) = services.drift.check_due()  # the 200th answer: due, whatever the time
    assert check.n == 200 and check.status == "drift"
    assert services.drift.check_due() == []  # none since
    clock.advance(1)
    serve(services, movies[200:300])
    assert services.drift.check_due() == []  # 100 new answers
    examples = services.drift.examples("m", check)
    assert examples is not None and examples.detector == "oov" and len(examples.texts) == 5
    assert all(text in movies[:200] for text in examples.texts)  # from that check's window, read again


def test_checking_a_model_without_a_champion_or_an_unknown_model_is_a_clear_error(services: Services) -> None:
    services.registry.create_model(
        name="empty",
        labels=["0", "1"],
        family="tfidf-logreg",
        params={},
        policy=Policy(),
        train=uci_rows("yelp")[:100],
        golden=uci_rows("yelp")[100:150],
        source="uci:yelp",
    )
    with pytest.raises(ConflictError, match="no champion"):
        services.drift.check("empty")
    assert services.drift.check_due() == []  # skipped, not failed
    with pytest.raises(NotFoundError, match="nope"):
        services.drift.history("nope")
