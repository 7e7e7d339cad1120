"""The generative retrain on the tiny local Llama: feedback -> snapshot -> a LoRA adapter fitted
by SFT and DPO (or KTO) in stages -> scored with the champion on held-out data it never trained
on -> the gate's verdict -> registered and served, or rejected. On SQLite and PostgreSQL."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from learnloop.domain import FeedbackInput, VersionStatus
from learnloop.errors import InsufficientDataError
from learnloop.feedback.generate import GenerateInput
from learnloop.models import NewModel
from learnloop.services import Services

pytest.importorskip("trl")

NAMES = [
    "Ann", "Bob", "Cid", "Dee", "Eve", "Fay", "Gus", "Hal", "Ivy", "Jon", "Kim", "Lou", "Max", "Ned", "Oli",
    "Pat", "Quin", "Ray", "Sam", "Tom", "Uma", "Val", "Wes", "Xia", "Yul", "Zed", "Abe", "Bea", "Cal", "Dot",
]  # fmt: skip
# Fast on the tiny random base: no SFT stage, 30 DPO steps at a rate that moves LoRA there
# (../shared/LLM.md), the newest 30% of pairs held out (9 of 30), no judge.
POLICY: dict[str, Any] = {
    "sft_steps": 0,
    "dpo_steps": 30,
    "dpo_learning_rate": 5e-3,
    "min_pairs": 8,
    "min_preference_pairs": 5,
    "held_out_fraction": 0.3,
    "judge_prompts": 0,
}


def innkeeper(name: str) -> tuple[str, str, str]:
    """(prompt, the innkeeper's answer users prefer, the answer they reject)."""
    return f"hello, I am {name}", f"Welcome, {name}! A room is ready.", f"As an AI I cannot, {name}."


def create(services: Services, tiny_llama_dir: Path, **policy: Any) -> None:
    services.creation.create(
        NewModel("npc", task="generation", params={"base": str(tiny_llama_dir)}, policy={**POLICY, **policy}),
        None,
        actor="test",
    )


def prefer(services: Services, names: list[str], *, flipped: bool = False) -> None:
    items = []
    for name in names:
        prompt, good, bad = innkeeper(name)
        chosen, rejected = (bad, good) if flipped else (good, bad)
        items.append(FeedbackInput(prompt=prompt, chosen=chosen, rejected=rejected, subject=f"player-{name}"))
    services.feedback.record_sync("npc", items)


def test_an_adapter_trained_on_the_players_preferences_is_judged_better_and_served(
    services: Services, tiny_llama_dir: Path
) -> None:
    create(services, tiny_llama_dir)
    prefer(services, NAMES)
    progress: list[tuple[float, str]] = []
    outcome = services.training.retrain("npc", actor="test", progress=lambda f, m: progress.append((f, m)))

    assert outcome.promoted and outcome.version == 2, outcome.verdict
    version = services.registry.version("npc", 2)
    assert version.status == VersionStatus.CHAMPION and version.parent_version == 1
    assert version.artifact_uri and (services.store.get_dir(version.artifact_uri) / "manifest.json").is_file()
    (stage,) = version.metrics["training"]["stages"]
    assert (stage["stage"], stage["steps"], stage["examples"]) == ("dpo", 30, 21)
    assert version.metrics["held_out"]["pairs"] == 9
    preference = next(c for c in version.verdict["comparisons"] if c["metric"] == "preference_accuracy")
    assert preference["n"] == 9 and preference["candidate_accuracy"] > preference["champion_accuracy"]
    assert any("preference accuracy" in reason for reason in version.verdict["reasons"])
    per_token = preference["per_token"]  # reported beside the summed margins, from the same pairs
    assert per_token["candidate_only"] + per_token["champion_only"] <= 9
    assert per_token["candidate_mean_margin"] != preference["candidate_mean_margin"]
    assert any("per token (length-normalised" in reason for reason in version.verdict["reasons"])
    # Progress: each DPO step reached the caller, in order, within the retrain's span.
    steps = [m for _, m in progress if m.startswith("dpo step")]
    assert steps[0].startswith("dpo step 1/30") and steps[-1].startswith("dpo step 30/30")
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    answer = services.generation.generate_sync("npc", GenerateInput(prompt="hello, I am Eve", max_new_tokens=8))
    assert answer.version == 2


def test_dpo_with_an_sft_term_trains_the_adapter_through_trls_combined_loss(
    services: Services, tiny_llama_dir: Path
) -> None:
    """``dpo_sft_weight`` adds the chosen answers' NLL to the DPO loss (TRL's ``loss_type``
    ["sigmoid", "sft"]): the stage runs all its steps and the retrain is judged as any."""
    create(services, tiny_llama_dir, dpo_sft_weight=1.0)
    prefer(services, NAMES)
    outcome = services.training.retrain("npc", actor="test")
    version = services.registry.version("npc", outcome.version)
    (stage,) = version.metrics["training"]["stages"]
    assert (stage["stage"], stage["steps"]) == ("dpo", 30)
    last = stage["last"]
    # The pairs are separated (DPO's own term, -log sigmoid(margin), is then ~0): what remains
    # of the loss is the chosen answers' NLL per token, the SFT term
    dpo_term = math.log1p(math.exp(-last["rewards/margins"]))
    assert last["rewards/margins"] > 3 and last["loss"] > 0.5 > 10 * dpo_term, last
    assert version.verdict is not None and version.verdict["decision"] in ("promote", "reject")


def test_an_adapter_trained_on_flipped_preferences_is_rejected_on_the_newest_true_ones(
    services: Services, tiny_llama_dir: Path
) -> None:
    """Bad actors flipped the older pairs; the newest (held out) are honest: the candidate
    learnt the wrong taste and the gate sees it on pairs it never trained on."""
    create(services, tiny_llama_dir)
    prefer(services, NAMES[:21], flipped=True)
    prefer(services, NAMES[21:])
    outcome = services.training.retrain("npc", actor="test")

    assert not outcome.promoted and outcome.verdict["passed"] is False
    version = services.registry.version("npc", outcome.version)
    assert version.status == VersionStatus.REJECTED
    assert services.registry.deployment("npc").champion_version == 1
    assert any("preference accuracy" in reason for reason in version.verdict["reasons"])


def test_kto_learns_from_ratings_when_there_are_too_few_pairs(services: Services, tiny_llama_dir: Path) -> None:
    """Answers rated 5 and 1 (two to one prompt are a pair too, by their rating gap: DPO needs
    ``min_pairs`` of them, so a high minimum leaves the unpaired ratings to KTO)."""
    create(
        services, tiny_llama_dir, sft_steps=10, kto_steps=20, kto_learning_rate=5e-3, min_kto_rows=8, min_pairs=1_000
    )
    ratings = []
    for name in NAMES[:20]:
        prompt, good, bad = innkeeper(name)
        for response, rating in ((good, 5), (bad, 1)):
            logged = services.generations.log_sync("npc", {"prompt": prompt, "response": response})
            ratings.append(FeedbackInput(prediction_id=logged.prediction_id, rating=rating))
    services.ingest.flush()  # the prediction log writes in the background
    services.feedback.record_sync("npc", ratings)
    fractions: list[float] = []
    outcome = services.training.retrain("npc", actor="test", progress=lambda f, m: fractions.append(f))

    assert fractions == sorted(fractions)  # the KTO stage's steps come after the SFT stage's
    version = services.registry.version("npc", outcome.version)
    stages = [s["stage"] for s in version.metrics["training"]["stages"]]
    assert stages == ["sft", "kto"], version.metrics["training"]  # SFT on the answers rated 5, then KTO
    kto = version.metrics["training"]["stages"][1]
    assert kto["steps"] == 20 and kto["examples"] == version.metrics["sets"]["kto"]["train"]
    assert version.metrics["held_out"]["good_answers"] > 0  # the newest answers rated 5, scored by both


def test_too_little_feedback_changes_nothing(services: Services, tiny_llama_dir: Path) -> None:
    create(services, tiny_llama_dir)
    prefer(services, NAMES[:4])
    with pytest.raises(InsufficientDataError, match=r"policy\.min_pairs is 8"):
        services.training.retrain("npc", actor="test")
    assert [v.version for v in services.registry.versions("npc")] == [1]
