"""`learnloop replay --task generation` on the tiny local Llama and the shipped Orca sample:
the pairs stream through the generative loop in process (logged answers, ratings and
preferences per the data), the loop's own trigger retrains and the gate judges, an oracle
adapter is fitted on every streamed pair, and the base, the loop's champions and the oracle
are scored on held-out pairs nothing trained on. The tiny base's preferences are noise, so the
gate may go either way: what is asserted is that the loop ran, on what, and how it was reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from learnloop.replay.generation import FeedbackRule, GenerationReplayConfig, run_generation_replay

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
pytest.importorskip("trl")

TINY_POLICY = {
    "sft_steps": 2,
    "dpo_steps": 3,
    "dpo_learning_rate": 5e-3,
    "min_sft_rows": 2,
    "min_pairs": 4,
    "min_preference_pairs": 2,
}


def test_a_preference_stream_is_retrained_on_judged_and_compared_with_the_base_and_the_oracle(
    tmp_path: Path, tiny_llama_dir: Path
) -> None:
    out = tmp_path / "replay"
    config = GenerationReplayConfig(
        out=out,
        dataset="orca-sample",
        base=str(tiny_llama_dir),
        limit=None,
        held_out_fraction=0.25,
        max_chars=2_000,  # all 40 shipped pairs: 30 streamed, 10 held out
        feedback=FeedbackRule.BOTH,
        noise=0.2,
        retrain_every=16,  # one retrain, after 16 pairs (the next would need 32)
        policy=TINY_POLICY,
    )
    result = run_generation_replay(config)

    summary = json.loads(result.summary_path.read_text())
    assert summary == json.loads(json.dumps(result.summary, default=str))
    assert summary["data"]["stream"] == 30 and summary["data"]["held_out"] == 10
    fb = summary["feedback"]
    assert fb["pairs_sent"] == 30 and fb["events_sent"] == 3 * 30 and fb["refused"] == {}
    assert 0 < fb["untruthful_pairs"] < 15  # noise 0.2, drawn by the seed
    assert summary["config"]["policy"]["retrain_every"] == 48  # 16 pairs of 3 events each
    (retrain,) = summary["retrains"]  # the volume trigger, after 16 pairs; the candidate judged
    assert retrain["trigger_pair"] == 16 and retrain["requested_by"] == "trigger:feedback_volume", retrain
    assert retrain["decision"] in ("promote", "reject") and any("preference accuracy" in r for r in retrain["reasons"])
    stages = {s["stage"]: s for s in retrain["training"]["stages"]}
    assert set(stages) == {"sft", "dpo"} and stages["dpo"]["steps"] == 3
    # Every version that served a pair is in the learning curve; no rejected one served.
    curve = summary["learning_curve"]
    assert curve[0] == {**curve[0], "version": 1, "from_pair": 0}
    assert [c["version"] for c in curve][-1] == summary["final_champion"]
    assert sum(summary["pairs_by_version"].values()) == 30
    assert {int(v) for v in summary["pairs_by_version"]} <= {c["version"] for c in curve}
    assert summary["safety"]["rejected_versions_served"] == []
    assert summary["final_champion"] == (2 if retrain["promoted"] else 1)
    # The oracle: one fit on all 30 streamed pairs, the loop's stages.
    oracle = summary["oracle"]
    assert oracle["pairs"] == 30
    assert {s["stage"]: s["examples"] for s in oracle["training"]["stages"]} == {"sft": 30, "dpo": 30}
    assert (out / "oracle-adapter" / "adapter_config.json").is_file()
    # Held-out figures: the same 10 pairs for all; the loop's final figures are its champion's.
    held = summary["held_out"]
    for figures in held.values():
        assert figures["n"] == 10 and figures["ci95"][0] <= figures["accuracy"] <= figures["ci95"][1]
    assert held["loop"] == curve[-1]["held_out"]
    if summary["final_champion"] == 1:
        assert held["loop"] == held["static"] and summary["loop_vs_static"]["p_two_sided"] == 1.0
    for key in ("loop_vs_static", "oracle_vs_static", "loop_vs_oracle"):
        c = summary[key]
        assert c["n"] == 10 and 0 <= c["p_better"] <= 1 and c["ci95"][0] <= c["difference"] <= c["ci95"][1]
    assert result.plot_path.stat().st_size > 10_000
    assert "held-out preference accuracy" in result.html_path.read_text().lower()


def test_the_cli_refuses_an_unknown_data_set_before_anything_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "learnloop", "replay", "--task", "generation", "--dataset", str(tmp_path / "none.jsonl"),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and "--dataset is hh, orca, orca-sample or a JSONL file" in done.stderr
    assert not (tmp_path / "out").exists()
