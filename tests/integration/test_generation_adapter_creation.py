"""A generative model created from prompt/response rows (the tiny Llama base built locally):
version 1 is a LoRA adapter fitted in the training runner, stored under its own key and served
attached to the base's engine; bad data is one clear error and leaves nothing behind. On a
migrated SQLite file and PostgreSQL; over HTTP with the training runner's child process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import make_settings
from learnloop.app import create_app
from learnloop.artifacts.local import path_of_file_url
from learnloop.errors import ConflictError, DataError, NotFoundError, ValidationError
from learnloop.feedback.generate import GenerateInput
from learnloop.models import FileSource, NewModel, RowsSource
from learnloop.services import Services, build_services
from learnloop.training.runner import ChildProcessRunner

pytest.importorskip("trl")

SYSTEM = "You are a blacksmith in a fantasy village."
ROWS = [
    ("Can you fix my sword?", "Aye, leave it on the anvil."),
    ("What do you sell?", "Swords, shields and horseshoes."),
    ("How much for a shield?", "Twenty gold pieces."),
    ("Where is the inn?", "Down the road, past the well."),
    ("Who are you?", "The village smith, forty years at the forge."),
    ("Is the forge hot?", "Hot enough to melt your boots."),
    ("Can I buy an axe?", "Come back tomorrow for an axe."),
    ("Do you know magic?", "Only the magic of hammer and fire."),
    ("What is your name?", "They call me Old Brann."),
    ("Any news?", "The baron raised the taxes again."),
]
# Enough steps at a rate that moves LoRA on the tiny random base (../shared/LLM.md).
FAST_SFT = {"max_steps": 30, "learning_rate": 5e-3, "batch_size": 4}


def adapter_model(tiny_llama_dir: Path, name: str = "npc", **sft: Any) -> NewModel:
    return NewModel(
        name,
        task="generation",
        params={"base": str(tiny_llama_dir), "system_prompt": SYSTEM, "sft": {**FAST_SFT, **sft}},
    )


def stored_adapters(services: Services, name: str) -> list[str]:
    """What this model holds under ``models/<name>`` in the (local) artifact store."""
    folder = path_of_file_url(services.store.url) / "models" / name
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def greedy(services: Services, name: str, prompt: str) -> str:
    return services.generation.generate_sync(name, GenerateInput(prompt=prompt, max_new_tokens=12, temperature=0)).text


def test_version_1_is_an_adapter_fitted_on_the_rows_and_served_on_the_base(
    services: Services, tiny_llama_dir: Path
) -> None:
    progress: list[str] = []
    rows = [*ROWS, ("   ", "no prompt"), ("no response", "")]
    created = services.creation.create(
        adapter_model(tiny_llama_dir),
        RowsSource(rows, name="npc rows"),
        actor="test",
        progress=lambda _f, message: progress.append(message),
    )
    version = created.version
    assert (version.version, version.status.value, version.family) == (1, "champion", "causal-lm-lora")
    assert version.artifact_uri.startswith("models/npc/v1-")
    assert (services.store.get_dir(version.artifact_uri) / "manifest.json").is_file()
    assert version.params["base"] == str(tiny_llama_dir.resolve()) and version.params["system_prompt"] == SYSTEM
    assert version.params["sft"]["rank"] == 8 and version.params["sft"]["max_steps"] == 30
    assert version.metrics["rows"] == len(ROWS) and version.metrics["steps"] == 30
    assert version.metrics["train_loss"] > 0 and version.metrics["seconds"] > 0
    assert (created.data.rows, created.data.skipped) == (len(ROWS), {"empty_prompt": 1, "empty_response": 1})
    assert any("LoRA adapter" in m for m in progress) and progress[-1] == "version 1 is champion"

    # The base alone, as a second model on the same base: the same engine serves both.
    services.creation.create(
        NewModel("plain", task="generation", params={"base": str(tiny_llama_dir), "system_prompt": SYSTEM}),
        None,
        actor="test",
    )
    tuned = greedy(services, "npc", ROWS[0][0])
    plain = greedy(services, "plain", ROWS[0][0])
    (engine,) = services.generators.engines()
    assert "npc@1" in engine.loaded.adapters
    assert tuned != plain, tuned

    assert stored_adapters(services, "npc") == [Path(version.artifact_uri).name]
    services.deletion.delete("npc", actor="test")
    assert stored_adapters(services, "npc") == []


def test_bad_data_is_one_clear_error_and_leaves_nothing(
    services: Services, tiny_llama_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(DataError, match="at least 8 prompt/response rows; few has 3 usable") as few:
        services.creation.create(adapter_model(tiny_llama_dir), RowsSource(ROWS[:3], name="few"), actor="test")
    assert few.value.field == "data"
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "answer": r}) + "\n" for p, r in ROWS))
    with pytest.raises(DataError, match="'response' not found") as missing:
        services.creation.create(adapter_model(tiny_llama_dir), FileSource(data, "prompt", "response"), actor="test")
    assert missing.value.field == "response_column"
    with pytest.raises(ValidationError, match="different columns"):
        services.creation.create(adapter_model(tiny_llama_dir), FileSource(data, "prompt", "prompt"), actor="test")
    with pytest.raises(ValidationError, match="unknown sft setting"):
        services.creation.create(adapter_model(tiny_llama_dir, epoch=2), RowsSource(ROWS), actor="test")
    long = [(p, r * 1000) for p, r in ROWS]
    with pytest.raises(DataError, match="10 response_too_long"):
        services.creation.create(adapter_model(tiny_llama_dir), RowsSource(long), actor="test")
    with pytest.raises(ValidationError, match="takes no data"):
        services.creation.create(NewModel("npc", task="generation", backend="external"), RowsSource(ROWS), actor="test")
    with pytest.raises(NotFoundError):
        services.registry.get_model("npc")
    assert stored_adapters(services, "npc") == []


def test_a_name_taken_while_fitting_leaves_the_winner_and_removes_the_adapter(
    services: Services, tiny_llama_dir: Path
) -> None:
    """All or nothing: the adapter is fitted and stored, then the name is taken by another
    creation before version 1 is registered; this attempt's adapter goes, the winner stays."""

    def take_the_name(fraction: float, message: str) -> None:
        if message.startswith("storing"):
            services.creation.create(NewModel("npc", task="generation", backend="external"), None, actor="other")

    with pytest.raises(ConflictError):
        services.creation.create(adapter_model(tiny_llama_dir), RowsSource(ROWS), actor="test", progress=take_the_name)
    winner = services.registry.get_model("npc")
    assert winner.family == "external"
    assert stored_adapters(services, "npc") == []


def test_json_rows_over_http_fit_the_adapter_in_the_training_process(tmp_path: Path, tiny_llama_dir: Path) -> None:
    home = tmp_path / "home"
    services = build_services(make_settings(home, f"sqlite:///{home / 'learnloop.db'}", isolate_training=True))
    body = {
        "name": "npc",
        "task": "generation",
        "system_prompt": SYSTEM,
        "params": {"base": str(tiny_llama_dir), "sft": FAST_SFT},
        "rows": [{"prompt": p, "response": r} for p, r in ROWS],
    }

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=120) as http:
            mixed = {**body, "name": "mixed", "rows": [*body["rows"], {"text": "a", "label": "b"}]}
            refused = await http.post("/v1/models", json=mixed)
            assert refused.status_code == 422 and "{prompt, response}" in refused.json()["detail"], refused.text
            created = await http.post("/v1/models", json=body)
            assert created.status_code == 201, created.text
            assert created.json()["data"] == {
                "source": "request rows",
                "rows": 10,
                "skipped": {},
                "train": 10,
                "golden": 0,
            }
            version = (await http.get("/v1/models/npc/versions/1")).json()
            assert version["status"] == "champion" and version["lineage"]["artifact_uri"].startswith("models/npc/v1-")
            assert version["metrics"]["steps"] == 30 and version["params"]["sft"]["learning_rate"] == 5e-3

            csv_text = "q,a\n" + "".join(f'"{p}","{r}"\n' for p, r in ROWS)
            fields = {"name": "smith", "task": "generation", "prompt_column": "q", "response_column": "a"}
            fields["params"] = json.dumps({"base": str(tiny_llama_dir), "sft": {**FAST_SFT, "max_steps": 5}})
            upload = await http.post("/v1/models", data=fields, files={"file": ("npc.csv", csv_text, "text/csv")})
            assert upload.status_code == 201, upload.text
            assert (upload.json()["data"]["source"], upload.json()["data"]["rows"]) == ("npc.csv", 10)

    try:
        asyncio.run(scenario())
        assert isinstance(services.runner, ChildProcessRunner)
    finally:
        services.close()
