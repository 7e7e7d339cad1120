"""Automatic retrains of a generative model served in process (the tiny local Llama base; its
answers logged as made elsewhere, so no test generates), on a migrated SQLite file and
PostgreSQL: the volume trigger counts the events that can become training rows, and a low
online mean rating alarms once and queues a retrain. These check what is queued; a model whose
answers are made elsewhere has nothing to retrain, so no trigger fires for it."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from learnloop.app import create_app
from learnloop.domain import FeedbackInput, VersionStatus
from learnloop.errors import NotSupportedError
from learnloop.models import NewModel
from learnloop.routing.split import in_share
from learnloop.services import Services

Factory = Callable[..., Services]


def npc(services: Services, base: Path | None, name: str = "npc", **policy: object) -> None:
    """A generative model on the local ``base``, or (None) one whose answers are made elsewhere."""
    if base is None:
        request = NewModel(name=name, task="generation", backend="external", policy=policy)
    else:
        request = NewModel(name=name, task="generation", params={"base": str(base)}, policy=policy)
    services.creation.create(request, None, actor="test")


def answers(services: Services, model: str, n: int, start: int = 0) -> list[str]:
    """``n`` answers logged for ``model`` (written: feedback on them joins at once)."""
    ids = [
        services.generations.log_sync(
            model, {"prompt": f"Where is house {i}?", "response": "Down the road.", "source_model": "claude-sonnet"}
        ).prediction_id
        for i in range(start, start + n)
    ]
    services.ingest.flush()
    return ids


def rate(services: Services, model: str, ids: Sequence[str], ratings: Sequence[int]) -> None:
    items = [FeedbackInput(prediction_id=p, rating=r) for p, r in zip(ids, ratings, strict=True)]
    services.feedback.record_sync(model, items)


def signal(services: Services, model: str, ids: Sequence[str], name: str) -> None:
    services.feedback.record_sync(model, [FeedbackInput(prediction_id=p, signal=name, value=True) for p in ids])


def test_100_ratings_queue_a_retrain_of_a_generative_model_by_volume(
    services_factory: Factory, tiny_llama_dir: Path
) -> None:
    services = services_factory()
    npc(services, tiny_llama_dir)  # retrain_every: 100, the generative default
    assert services.registry.get_model("npc").policy.triggers.retrain_every == 100
    ids = answers(services, "npc", 100)
    rate(services, "npc", ids[:99], [4, 2, 5] * 33)
    signal(services, "npc", ids, "copied")  # implicit, and mapped to no outcome: not training rows
    assert services.worker.check_triggers() == []
    rate(services, "npc", ids[99:], [1])
    assert services.worker.check_triggers() == ["npc"]
    job = services.jobs.active("npc", "retrain")
    assert job is not None and job.requested_by == "trigger:feedback_volume"
    (queued,) = services.registry.events("npc", 5, kinds=["retrain_queued"])
    assert (queued.reason or "").startswith("100 new training events") and "labelled" not in (queued.reason or "")
    assert services.worker.check_triggers() == []  # one retrain at a time


def test_mapped_implicit_signals_count_and_a_users_retrain_every_wins(
    services_factory: Factory, tiny_llama_dir: Path
) -> None:
    services = services_factory()
    npc(services, tiny_llama_dir, "mapped", retrain_every=5, implicit_outcomes="copied=good")
    assert services.registry.get_model("mapped").policy.triggers.retrain_every == 5
    ids = answers(services, "mapped", 6)
    rate(services, "mapped", ids[:4], [5, 5, 4, 1])
    signal(services, "mapped", ids[4:5], "regenerated")  # not mapped: does not count
    assert services.worker.check_triggers() == []
    signal(services, "mapped", ids[5:], "copied")
    assert services.worker.check_triggers() == ["mapped"]


def test_low_ratings_alarm_once_queue_a_retrain_and_recover(services_factory: Factory, tiny_llama_dir: Path) -> None:
    services = services_factory()
    npc(services, tiny_llama_dir, min_mean_rating=3.5, accuracy_window=40, retrain_every=100_000)
    ids = answers(services, "npc", 40)
    rate(services, "npc", ids, [1, 2, 3, 2] * 10)  # mean 2.0
    perf = services.performance.check("npc")
    rating = perf.rating
    assert rating.n == 40 and rating.mean == 2.0 and rating.alarm, rating.reason
    assert rating.ci_high is not None and rating.ci_high < 3.5
    (event,) = services.registry.events("npc", 10, kinds=["rating_dropped"])
    assert event.version == 1 and "SHOWN BELOW" in (event.reason or "")
    job = services.jobs.active("npc", "retrain")
    assert job is not None and job.requested_by == "trigger:rating_drop"
    (queued,) = services.registry.events("npc", 5, kinds=["retrain_queued"])
    assert "mean rating 2.00" in (queued.reason or "")
    services.performance.check("npc")  # still low: no second event, no second job
    assert len(services.registry.events("npc", 10, kinds=["rating_dropped"])) == 1
    assert not perf.alarm  # no golden accuracy: the accuracy alarm stays quiet

    newer = answers(services, "npc", 40, start=40)
    rate(services, "npc", newer, [5, 4] * 20)  # the newest 40 rated answers: mean 4.5
    assert not services.performance.check("npc").rating.alarm
    kinds = ["rating_dropped", "rating_recovered"]
    assert [e.kind for e in services.registry.events("npc", 10, kinds=kinds)] == ["rating_recovered", "rating_dropped"]

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            shown = (await http.get("/v1/models/npc/performance")).json()["rating"]
            assert (shown["n"], shown["mean"], shown["threshold"], shown["alarm"]) == (40, 4.5, 3.5, False)
            assert shown["ci_low"] < 4.5 < shown["ci_high"]
            metrics = (await http.get("/metrics")).text
            assert 'learnloop_online_mean_rating{model="npc"} 4.5' in metrics
            assert 'learnloop_rating_alarm{model="npc"} 0.0' in metrics
            page = await http.get("/dashboard/models/npc")
            assert page.status_code == 200 and 'id="online-rating">mean 4.50' in page.text
            assert '<span class="badge ok">above 3.50</span>' in page.text

    asyncio.run(scenario())


def test_a_challenger_whose_answers_grow_far_longer_is_rolled_back_by_the_length_guardrail(
    services_factory: Factory,
) -> None:
    services = services_factory()
    npc(services, None)  # answers made elsewhere
    services.cache.serve()
    first = services.registry.version("npc", 1)
    second = services.registry.register(
        replace(first, version=0, status=VersionStatus.CANDIDATE, status_reason="a wordier provider"), actor="test"
    )
    changes = {"guardrail_min_predictions": 60, "canary_min_feedback": 1_000}
    rollout = services.rollouts.start("npc", second.version, "ab", actor="test", share=0.5, changes=changes)
    routes: Counter[str] = Counter()
    for i in range(240):
        subject = f"user-{i}"
        wordy = in_share(rollout.id, subject, rollout.share)  # the arm this subject's requests go to
        response = ("The inn is by the well, past the smithy. " * (20 if wordy else 2)) + "x" * (i % 7)
        logged = services.generations.log_sync(
            "npc", {"prompt": f"Where is the inn? ({i})", "response": response, "subject": subject}
        )
        routes[logged.route] += 1
    services.ingest.flush()
    assert routes["canary"] >= 60 and routes["champion"] >= 60
    decision = services.rollouts.look("npc")
    assert decision is not None and decision.action == "rollback", decision
    assert "median answer length" in decision.reason
    ended = services.rollouts.get("npc", rollout.id)
    (check,) = [g for g in ended.stats["guardrails"] if g["name"] == "length_shift"]
    assert check["tripped"] and check["value"] > 5


def test_a_model_answered_elsewhere_has_nothing_to_retrain(services_factory: Factory) -> None:
    """Its feedback is kept and exported, but no trigger queues a retrain bound to fail, and
    asking for one is a clear refusal."""
    services = services_factory()
    npc(services, None, min_mean_rating=3.5, accuracy_window=40, retrain_every=10)
    ids = answers(services, "npc", 40)
    rate(services, "npc", ids, [1, 2] * 20)
    assert services.worker.check_triggers() == []
    assert services.performance.check("npc").rating.alarm  # measured and shown all the same
    assert services.jobs.active("npc", "retrain") is None
    with pytest.raises(NotSupportedError, match="cannot fit its weights"):
        services.jobs.enqueue("npc", "retrain", requested_by="test")
