"""Per-model policy: every rule is checked where the policy is made, with the field named."""

from __future__ import annotations

from typing import Any

import pytest

from learnloop.errors import ValidationError
from learnloop.policy import Policy


def test_round_trips_through_a_dict() -> None:
    policy = Policy.of(retrain_every=150, cooldown_seconds=0.0, auto_promote=False)
    assert Policy.from_dict(policy.to_dict()) == policy
    assert Policy.from_dict(policy.to_sections()) == policy
    assert policy.updated({"alpha": 0.01}).gate.alpha == 0.01
    assert policy.updated({"alpha": 0.01}).triggers.retrain_every == 150


def test_the_generative_gate_settings_round_trip_in_the_gate_section() -> None:
    defaults = Policy().gate
    assert (defaults.min_preference_pairs, defaults.nll_margin) == (20, 0.05)
    assert (defaults.judge_prompts, defaults.judge_required) == (16, False)
    policy = Policy.of(min_preference_pairs=50, nll_margin=0.1, judge_prompts=32, judge_required=True)
    assert Policy.from_dict(policy.to_dict()) == policy
    assert Policy.from_dict(policy.to_sections()) == policy
    stored = policy.to_sections()["gate"]
    assert (stored["min_preference_pairs"], stored["nll_margin"]) == (50, 0.1)
    assert (stored["judge_prompts"], stored["judge_required"]) == (32, True)
    assert Policy.of(judge_prompts=0).gate.judge_prompts == 0
    with pytest.raises(ValidationError):
        Policy().updated({"judge_required": "yes"})


def test_max_epochs_caps_a_stages_steps_by_its_rows() -> None:
    assert Policy().adapters.steps(30, 3) == 30  # no cap by default
    capped = Policy.of(max_epochs=2.5, train_batch_size=4).adapters
    assert [capped.steps(24, rows) for rows in (1, 13, 38, 41, 400)] == [1, 9, 24, 24, 24]


def test_unknown_field_names_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="retrain_every") as info:
        Policy().updated({"retrain_evry": 5})
    assert info.value.field == "policy"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"retrain_every": 0}, "retrain_every"),
        ({"cooldown_seconds": -1}, "cooldown_seconds"),
        ({"min_train_examples": 1}, "min_train_examples"),
        ({"recent_blocks": 1}, "recent_blocks"),
        ({"recent_blocks": 21}, "recent_blocks"),
        ({"recent_holdout_max": 0}, "recent_holdout_max"),
        ({"min_recent_examples": 0}, "min_recent_examples"),
        ({"golden_margin": 1.0}, "golden_margin"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"min_recent_gain": 1.0}, "min_recent_gain"),
        ({"feedback_weight": 0}, "feedback_weight"),
        ({"feedback_weight": "heavy"}, "feedback_weight"),
        ({"min_preference_pairs": 0}, "min_preference_pairs"),
        ({"nll_margin": -0.01}, "nll_margin"),
        ({"judge_prompts": -1}, "judge_prompts"),
        ({"judge_prompts": 0, "judge_required": True}, "judge_required"),
        ({"judge_samples": 0}, "judge_samples"),
        ({"judge_temperature": 0.0}, "judge_temperature"),
        ({"preference_required": False}, "preference_required"),
        ({"max_epochs": -1.0}, "max_epochs"),
    ],
)
def test_out_of_range_values_are_refused_with_the_field_named(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Policy().updated(changes)
    assert info.value.field == f"policy.{field}"


@pytest.mark.parametrize(
    "changes",
    [
        {"retrain_every": "abc"},
        {"retrain_every": None},
        {"retrain_every": 1.5},
        {"alpha": "0.05"},
        {"auto_promote": "no"},
    ],
    ids=["str", "null", "float-count", "str-alpha", "str-bool"],
)
def test_values_of_the_wrong_type_are_a_validation_error(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Policy().updated(changes)


def test_a_policy_stored_by_an_older_version_loads_without_its_retired_fields() -> None:
    stored = {**Policy().to_dict(), "recent_holdout_fraction": 0.2}
    stored.pop("recent_blocks")
    assert Policy.from_dict(stored) == Policy()
    with pytest.raises(ValidationError):
        Policy.from_dict({**Policy().to_dict(), "recent_holdout_fractoin": 0.2})


def test_settings_live_in_sections_and_keep_their_flat_names() -> None:
    policy = Policy.of(rollout="canary", canary_steps="10,50", alpha=0.01, pii_scrub="")
    assert policy.rollout.strategy == "canary" and policy.rollout.steps == (0.1, 0.5)
    assert policy.gate.alpha == 0.01 and policy.curation.pii_scrub == ""
    stored = policy.to_sections()
    assert stored["rollout"]["strategy"] == "canary" and "rollout" not in stored["gate"]
    assert policy.to_dict()["rollout"] == "canary"
    assert sorted(policy.to_dict()) == sorted(Policy.names())


def test_a_section_stored_with_a_wrong_type_names_the_flat_field() -> None:
    with pytest.raises(ValidationError) as info:
        Policy.from_dict({"rollout": {"strategy": "blue-green"}})
    assert info.value.field == "policy.rollout"
