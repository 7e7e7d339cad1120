"""A generative model whose answers are made elsewhere, as a user makes one: ``learnloop init
--task generation --backend external`` (a real subprocess), then a real server that starts
healthy with it, logs its answers and takes feedback on them beside a classifier."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ServerLauncher, learnloop_executable, run_cli, subprocess_env, uci_rows

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def one_error_line(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_an_external_generative_model_from_the_cli_serves_logs_and_takes_feedback(
    tmp_path: Path, live_server: ServerLauncher
) -> None:
    home = tmp_path / "home"
    one_error_line(
        run_cli("init", "--home", home, "--model", "npc", "--task", "generation", "--base", tmp_path, check=False),
        "no config.json",
    )
    one_error_line(run_cli("init", "--home", home, "--model", "m", check=False), "--data")
    assert not home.exists()
    created = run_cli(
        "init", "--home", home, "--model", "npc", "--task", "generation", "--backend", "external",
        "--system-prompt", "You are a blacksmith.",
    )  # fmt: skip
    assert "version 1 is champion" in created.stdout and "/v1/models/npc/generations" in created.stdout
    data = tmp_path / "reviews.csv"
    with data.open("w", newline="") as out:
        csv.writer(out).writerows([("text", "label"), *uci_rows("yelp")[:300]])
    run_cli("init", "--home", home, "--model", "m", "--data", data, "--text-column", "text", "--label-column", "label")
    assert "champion" in run_cli("versions", "--home", home, "--model", "npc").stdout
    assert "npc" in run_cli("status", "--home", home, "--model", "npc").stdout

    server = live_server.start(home, f"sqlite:///{home}/learnloop.db")
    with server.client() as http:
        health = http.get("/health").json()
        assert (health["status"], health["models"], health["unavailable"]) == ("ok", {"m": 1, "npc": 1}, {}), health
        assert http.get("/ready").status_code == 200
        assert http.post("/v1/models/m/predict", json={"text": "Great food."}).status_code == 200
        ids = []
        for response in ("Aye, I can mend it.", "I cannot help you."):
            logged = http.post(
                "/v1/models/npc/generations",
                json={"prompt": "Can you fix my sword?", "response": response, "source_model": "claude-sonnet"},
            )
            assert logged.status_code == 201, logged.text
            assert (logged.json()["version"], logged.json()["route"]) == (1, "champion")
            ids.append(logged.json()["prediction_id"])
        pref = http.post(
            "/v1/models/npc/feedback", json={"chosen_prediction_id": ids[0], "rejected_prediction_id": ids[1]}
        )
        assert pref.status_code == 201, pref.text
        assert http.post("/v1/models/npc/feedback", json={"prediction_id": ids[1], "rating": 1}).status_code == 201
        refused = http.post("/v1/models/npc/predict", json={"text": "Hello?"})
        assert refused.status_code == 422 and "generations" in refused.json()["detail"], refused.text
        assert refused.json()["code"] == "wrong_task"


NPC_ROWS = [
    ("Can you fix my sword?", "Aye, leave it on the anvil."),
    ("What do you sell?", "Swords, shields and horseshoes."),
    ("How much for a shield?", "Twenty gold pieces."),
    ("Where is the inn?", "Down the road, past the well."),
    ("Who are you?", "The village smith, forty years at the forge."),
    ("Is the forge hot?", "Hot enough to melt your boots."),
    ("Can I buy an axe?", "Come back tomorrow for an axe."),
    ("Do you know magic?", "Only the magic of hammer and fire."),
    ("What is your name?", "They call me Old Brann."),
]


def test_a_generative_model_from_prompt_response_rows_on_the_cli(tmp_path: Path, tiny_llama_dir: Path) -> None:
    home = tmp_path / "home"
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps({"q": p, "a": r}) + "\n" for p, r in NPC_ROWS) + '{"q": "", "a": "x"}\n')
    init = ("init", "--home", home, "--model", "npc", "--task", "generation", "--base", tiny_llama_dir)
    fast = ("--param", 'sft={"max_steps": 20, "learning_rate": 0.005}')
    one_error_line(run_cli(*init, "--data", data, check=False), "'prompt' not found", "'q'")
    one_error_line(run_cli(*init, "--data", data, "--text-column", "q", check=False), "--prompt-column")
    one_error_line(
        run_cli(
            *init, "--data", data, "--prompt-column", "q", "--response-column", "a", "--param", "sft=3", check=False
        ),
        "sft must be an object",
    )
    assert not home.exists()  # a failed init leaves nothing

    created = run_cli(
        *init, "--data", data, "--prompt-column", "q", "--response-column", "a", "--system-prompt", "You are a smith.",
        *fast,
    )  # fmt: skip
    out = " ".join(created.stdout.split())
    assert "version 1 is champion" in out and "LoRA adapter fitted on 9 rows" in out, created.stdout
    assert "skipped 1 empty_prompt" in out and "in 20 steps" in out, created.stdout
    assert "Traceback" not in created.stderr and "{'loss'" not in created.stdout + created.stderr
    assert "champion" in run_cli("versions", "--home", home, "--model", "npc").stdout
    answer = run_cli("generate", "--home", home, "--model", "npc", "--max-new-tokens", "8", NPC_ROWS[0][0])
    assert answer.stdout.strip(), answer


def test_without_the_llm_extra_fitting_an_adapter_is_one_line_naming_the_extra(
    tmp_path: Path, tiny_llama_dir: Path
) -> None:
    hide = tmp_path / "hide-trl"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text('import sys\nsys.modules["trl"] = None  # as if not installed\n')
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in NPC_ROWS))
    home = tmp_path / "home"
    path = os.pathsep.join(filter(None, [str(hide), os.environ.get("PYTHONPATH")]))
    proc = subprocess.run(
        [learnloop_executable(), "init", "--home", str(home), "--model", "npc", "--task", "generation",
         "--base", str(tiny_llama_dir), "--data", str(data)],
        capture_output=True, text=True, timeout=120, env=subprocess_env(PYTHONPATH=path), stdin=subprocess.DEVNULL,
    )  # fmt: skip
    one_error_line(proc, "pip install 'learnloop[llm]'", "trl")
    assert not home.exists()
