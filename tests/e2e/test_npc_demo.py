"""The generative demo's loop (`learnloop demo --task generation`) against a real server on the
tiny local Llama: players play, the server's worker retrains, the gate judges, the summary and
the learning curve are written. SmolLM2 itself is too slow for the suite; the tiny base's
answers are noise, so the players are noisy too (they always choose) and the gate may go
either way: what is asserted is that the loop ran and how it was reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from learnloop.replay.npc import NpcDemoConfig, Taste, run_npc_demo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
pytest.importorskip("trl")

TINY_POLICY = {
    "retrain_every": 200,
    "sft_steps": 2,
    "dpo_steps": 3,
    "dpo_learning_rate": 5e-3,
    "min_sft_rows": 2,
    "min_pairs": 4,
    "min_kto_rows": 4,
    "min_preference_pairs": 2,
    "held_out_fraction": 0.3,
    "rollout": "swap",
}


def ending_base(tiny_llama_dir: Path, directory: Path) -> Path:
    """The tiny base, ending an answer at any of a quarter of its tokens: its answers finish
    within a few tokens (an answer cut off at the token limit trains only as a rejected one)."""
    base = Path(shutil.copytree(tiny_llama_dir, directory))
    config = json.loads((base / "generation_config.json").read_text())
    config["eos_token_id"] = [2, *range(3, 512, 4)]
    (base / "generation_config.json").write_text(json.dumps(config))
    return base


def test_the_players_feedback_is_retrained_on_judged_and_summarized(tmp_path: Path, tiny_llama_dir: Path) -> None:
    out = tmp_path / "npc"
    config = NpcDemoConfig(
        out=out,
        base=str(ending_base(tiny_llama_dir, tmp_path / "base")),
        concurrency=4,
        max_new_tokens=16,
        taste=Taste(rating_noise=1.5, choice_gap=0.0, choice_errors=0.3),
        policy=TINY_POLICY,
        final_answers=4,
        max_seconds=150,
    )
    result = run_npc_demo(config)

    summary = json.loads(result.summary_path.read_text())
    assert summary == json.loads(json.dumps(result.summary, default=str))
    assert summary["why_stopped"].startswith("the loop ran its course"), summary["why_stopped"]
    (retrain, *_) = summary["retrains"]
    assert retrain["version"] == 2 and retrain["passed_gate"] in (True, False)
    assert [s["stage"] for s in retrain["stages"]][-1] == "dpo"
    kinds = [e["kind"] for e in summary["events"]]
    assert "retrain_queued" in kinds and "version_registered" in kinds
    first, final = summary["first_champion"], summary["final_champion"]
    assert first["version"] == 1 and first["rating"]["n"] > 0 and len(first["rating"]["ci95"]) == 2
    held = first["held_out_preference_accuracy"]
    assert held["n"] >= 2 and 0 <= held["ci95"][0] <= held["accuracy"] <= held["ci95"][1] <= 1
    shift = summary["held_out_preference"]["shift"]  # reported: the demo's gate asks the judge
    assert shift["judged"] is False and shift["toward"] + shift["away"] <= held["n"]
    assert 0 <= shift["ci"][0] <= shift["share"] <= shift["ci"][1] <= 1 and 0 < shift["p_better"] <= 1
    judge = summary["held_out_judge"]  # sampled answers of both versions, scored by the ratings' judge
    assert judge["judged"] is True and judge["samples_per_prompt"] == 4
    assert judge["n"] == 4 * retrain["held_out"]["judged_prompts"] > 0  # each held-out line once, 4 answers
    assert 0 < judge["p_better"] <= 1 and judge["ci"][0] <= judge["difference"] <= judge["ci"][1]
    if retrain["passed_gate"]:
        assert final["version"] == 2 and summary["promoted_by"] is not None
        assert final["answers"] >= 4 and summary["rating_difference"]["welch_p"] is not None
    else:
        assert final["version"] == 1 and summary["rating_difference"] is None
    players = summary["players"]
    assert players["answers"] == config.answers_per_encounter * players["encounters"]
    assert players["answers"] == sum(players["answers_by_version"].values())
    assert result.plot_path.stat().st_size > 10_000
    # Without keep_server, the server the demo started is gone.
    assert result.server is None and summary["server_url"] is None
    assert not (out / "server.pid").exists()
