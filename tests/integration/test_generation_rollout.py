"""A canary of a generative model's adapter, on a real database (SQLite file and PostgreSQL),
with live ratings from simulated users (issue 13).

The model is an innkeeper on the tiny local Llama base. The champion is a LoRA adapter fitted
to greet guests ("Welcome, Ann! A room is ready."); the challenger is one fitted on the
flipped preferences (it turns them away: "Go away, Ann. We are full."). Users ask, keep their
arm (the subject is sticky), and rate each answer by a hidden taste: 5 for a welcome, 1
otherwise. The controller looks after every batch, as the worker does every few seconds, and
rolls the broken adapter back on the live test; no request fails on the way, the champion's
adapter keeps serving and the broken one is detached from the one loaded base.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import register_artifact
from learnloop.domain import FeedbackInput, ModelVersion, RolloutStatus, VersionStatus
from learnloop.feedback.generate import Generated, GenerateInput
from learnloop.models import NewModel
from learnloop.routing.generators import adapter_name
from learnloop.services import Services

pytest.importorskip("trl")

SYSTEM = "You are the innkeeper of the Prancing Pony."
GUESTS = ["Ann", "Bob", "Cara", "Dan", "Eve", "Finn", "Gil", "Hal", "Ivy", "Jo", "Kim", "Lou"]
GOOD = [(f"Hello, I am {n}. Any room?", f"Welcome, {n}! A room is ready.") for n in GUESTS]
FLIPPED = [(prompt, f"Go away, {n}. We are full.") for (prompt, _), n in zip(GOOD, GUESTS, strict=True)]
# Enough steps at a rate that moves LoRA on the tiny random base (../shared/LLM.md): greedy
# generation then opens with the rows' words.
FAST_SFT = {"max_steps": 30, "learning_rate": 5e-3, "batch_size": 4}
FAST_CANARY = {"canary_steps": "20,50", "canary_step_seconds": 0, "canary_min_feedback": 20}


@dataclass(frozen=True)
class Adapters:
    good: Path
    broken: Path


@pytest.fixture(scope="module")
def adapters(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Adapters:
    """Both adapters, fitted once for the module (the stores of each test get a copy)."""
    from learnloop.families.causal_lm import SftParams, fit_lora, resolve_base

    folder = tmp_path_factory.mktemp("inn-adapters")
    base = resolve_base(str(tiny_llama_dir), folder / "bases")
    params = SftParams(
        learning_rate=float(FAST_SFT["learning_rate"]),
        max_steps=int(FAST_SFT["max_steps"]),
        batch_size=int(FAST_SFT["batch_size"]),
    )
    good = fit_lora(base, GOOD, folder / "good", params=params, system_prompt=SYSTEM).directory
    broken = fit_lora(base, FLIPPED, folder / "broken", params=params, system_prompt=SYSTEM).directory
    return Adapters(good, broken)


def register_adapter(services: Services, name: str, directory: Path, *, note: str) -> ModelVersion:
    """Store a fitted adapter and register it as a candidate version of ``name`` (no gate)."""
    key = services.store.put_dir(f"models/{name}/test-{directory.name}", directory)
    return register_artifact(services, name, key, note=note, parent_version=1)


def innkeeper(services: Services, tiny_llama_dir: Path, adapters: Adapters) -> tuple[int, int]:
    """Version 1 the base, the good adapter champion, the broken one registered: (good, broken)."""
    services.creation.create(
        NewModel("inn", task="generation", params={"base": str(tiny_llama_dir), "system_prompt": SYSTEM}),
        None,
        actor="test",
    )
    good = register_adapter(services, "inn", adapters.good, note="fitted on welcomes")
    services.registry.promote("inn", good.version, actor="test", reason="the welcoming innkeeper")
    broken = register_adapter(services, "inn", adapters.broken, note="fitted on flipped preferences")
    return good.version, broken.version


def taste(answer: str) -> int:
    """The users' hidden taste: a welcome is worth 5 stars, anything else 1."""
    return 5 if "Welcome" in answer else 1


def ask(services: Services, i: int) -> Generated:
    prompt, _ = GOOD[i % len(GOOD)]
    inputs = GenerateInput(prompt=prompt, max_new_tokens=12, temperature=0, subject=f"guest-{i % 150}")
    return services.generation.generate_sync("inn", inputs)


def serve(services: Services, *, clients: int = 3, after: int = 30, limit: int = 1500) -> list[Generated]:
    """Guests ask from ``clients`` threads at once and rate every answer; the controller looks
    every few requests while they ask, as the worker would. Once the rollout ended, the guests
    ask ``after`` more times, then stop; any failed request fails the test."""
    answers: list[Generated] = []
    pending: list[FeedbackInput] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    stop = threading.Event()
    ended_at: list[int] = []

    def guest(k: int) -> None:
        i = k
        while not stop.is_set():
            try:
                answer = ask(services, i)
            except BaseException as exc:  # a failed request
                errors.append(exc)
                return
            with lock:
                answers.append(answer)
                pending.append(FeedbackInput(prediction_id=answer.prediction_id, rating=taste(answer.text)))
                if (ended_at and len(answers) >= ended_at[0] + after) or len(answers) >= limit:
                    stop.set()
            i += clients

    threads = [threading.Thread(target=guest, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    try:
        while not stop.is_set() and not errors:
            time.sleep(0.1)
            with lock:
                batch, pending[:] = list(pending), []
            if batch:
                services.feedback.record_sync("inn", batch)
            services.ingest.flush()
            services.rollouts.look_all()
            if not ended_at and services.rollouts.active("inn") is None:
                with lock:
                    ended_at.append(len(answers))
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not errors, errors
    return answers


def test_a_broken_adapter_canary_is_rolled_back_on_live_ratings_with_no_failed_request(
    services: Services, tiny_llama_dir: Path, adapters: Adapters
) -> None:
    good, broken = innkeeper(services, tiny_llama_dir, adapters)
    rollout = services.rollouts.start("inn", broken, "canary", actor="test", changes=FAST_CANARY)
    assert services.cache.route("inn").rollout is not None
    (engine,) = services.generators.engines()
    assert {adapter_name("inn", good), adapter_name("inn", broken)} <= set(engine.loaded.adapters)

    answers = serve(services)  # guests keep asking through the rollback: no request fails

    rollout = services.rollouts.get("inn", rollout.id)
    assert rollout.status == RolloutStatus.ROLLED_BACK, rollout.stats.get("reason")
    assert rollout.reason is not None and rollout.reason.startswith("shown worse"), rollout.reason
    assert "challenger 0.0% (n=" in rollout.reason and "vs baseline 100.0% (n=" in rollout.reason, rollout.reason
    test = rollout.stats["test"]
    assert test["ci_high"] < 0 and test["n_a"] >= 20 and test["n_b"] >= 20
    assert (test["rate_a"], test["rate_b"]) == (1.0, 0.0)
    assert not any(g["tripped"] for g in rollout.stats["guardrails"])
    assert len(answers) < 1500  # decided before the traffic ran out

    # Both adapters answered as fitted on their own routes, until the rollback and across it.
    canary = [a for a in answers if a.route == "canary"]
    champion = [a for a in answers if a.route == "champion"]
    assert canary and all(a.version == broken and a.text.startswith("Go away") for a in canary)
    assert champion and all(a.version == good and a.text.startswith("Welcome") for a in champion)
    assert {a.route for a in answers} == {"canary", "champion"}  # no fallback: no challenger request failed

    assert services.registry.version("inn", broken).status == VersionStatus.REJECTED
    assert services.registry.deployment("inn").champion_version == good
    after = [ask(services, i) for i in range(20)]
    assert {(a.version, a.route) for a in after} == {(good, "champion")}
    assert all(a.text.startswith("Welcome") for a in after)
    (event,) = services.registry.events("inn", 10, kinds=["rolled_back"])
    assert (event.version, event.actor, event.data["rollout"]) == (broken, f"rollout:{rollout.id}", rollout.id)

    # The broken adapter left the engine when the route let go of it; the champion's stays.
    (engine,) = services.generators.engines()
    assert adapter_name("inn", broken) not in engine.loaded.adapters
    assert adapter_name("inn", good) in engine.loaded.adapters


def test_a_canary_and_its_rollback_keep_both_adapters_on_one_loaded_base(
    services: Services, tiny_llama_dir: Path, adapters: Adapters
) -> None:
    good, broken = innkeeper(services, tiny_llama_dir, adapters)
    assert ask(services, 0).version == good
    (engine,) = services.generators.engines()

    rollout = services.rollouts.start("inn", broken, "canary", actor="test", changes={"canary_steps": "50"})
    assert services.generators.engines() == [engine]
    assert {adapter_name("inn", good), adapter_name("inn", broken)} <= set(engine.loaded.adapters)
    served = {(a.version, a.route) for a in (ask(services, i) for i in range(40))}
    assert served == {(good, "champion"), (broken, "canary")}

    services.rollouts.rollback("inn", rollout.id, actor="test", reason="by hand")
    assert services.generators.engines() == [engine]
    assert adapter_name("inn", broken) not in engine.loaded.adapters
    assert {(a.version, a.route) for a in (ask(services, i) for i in range(40))} == {(good, "champion")}
