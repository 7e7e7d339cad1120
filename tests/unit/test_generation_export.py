"""Exports of the generation sets, each checked against what its consumer reads: TRL's own data
utilities and the ``datasets`` JSON loader for the TRL formats (with a tiny byte-level BPE
tokenizer that has a chat template), the documented fields and types for OpenAI and Bedrock."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from generation_feedback import at, correction, prefer, rating, served, standalone, thumbs
from learnloop.domain import Model
from learnloop.errors import ValidationError
from learnloop.policy import Policy
from learnloop.tasks.generation.answers import Message
from learnloop.tasks.generation.curate import curate
from learnloop.tasks.generation.export import FORMATS, export_rows, export_sets
from learnloop.tasks.generation.sets import GenerationSets
from learnloop.tasks.generation.snapshot import build_snapshot
from learnloop.tasks.generation.training_data import snapshot_training_data, training_data

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{{ eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def sets() -> GenerationSets:
    system = [Message("system", "You are a blacksmith NPC."), Message("user", "Can you fix my sword?")]
    a = served("p1", "Aye, give it here.", messages=system)
    b = served("p2", "Go away.", messages=system)
    c = served("p3", "Bread costs two coins.", prompt="How much is bread?")
    events = [
        rating(a, 5, when=1),
        rating(b, 1, when=2),
        prefer(a, b, when=3),
        thumbs(c, True, when=4),
        correction(b, "Of course, traveller.", when=5),
        standalone("Greet me", "Well met!", "Hmph.", when=6),
    ]
    return curate(events, Policy.of(held_out_fraction=0.01), at(100))


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    """A byte-level BPE tokenizer trained in a blink, with special tokens and a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from tokenizers import decoders as tk_decoders
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>"]
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = tk_decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    raw.train_from_iterator(["the blacksmith fixes swords", "bread costs two coins", "well met traveller"], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token="<pad>", bos_token="<s>", eos_token="</s>", chat_template=CHAT_TEMPLATE
    )


def lines(data: bytes) -> list[dict[str, Any]]:
    assert data.endswith(b"\n") or not data
    return [json.loads(line) for line in data.decode().splitlines()]


@pytest.mark.parametrize(
    ("fmt", "keys", "rendered"),
    [
        ("trl-sft", {"text"}, "text"),
        ("trl-dpo", {"prompt", "chosen", "rejected"}, "chosen"),
        ("trl-kto", {"prompt", "completion", "label"}, "completion"),
    ],
)
def test_trl_formats_load_and_pass_trls_own_checks(
    sets: GenerationSets,
    tokenizer: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    keys: set[str],
    rendered: str,
) -> None:
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    import datasets
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    path = tmp_path / f"{fmt}.jsonl"
    path.write_bytes(export_sets(sets, fmt))
    loaded = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))
    direct = datasets.Dataset.from_list(lines(path.read_bytes()))
    assert len(loaded) == len(direct) == len(sets.rows(FORMATS[fmt][0], "train")) > 0
    for example in loaded:
        assert is_conversational(example)
        out = maybe_apply_chat_template(example, tokenizer)
        assert set(out) == keys
        assert all(isinstance(out[k], str) for k in keys - {"label"})
        assert out[rendered].strip()
    if fmt == "trl-sft":
        texts = [maybe_apply_chat_template(e, tokenizer)["text"] for e in loaded]
        assert any("<|system|>You are a blacksmith NPC." in t and "<|assistant|>Aye" in t for t in texts)
    if fmt == "trl-dpo":
        first = maybe_apply_chat_template(loaded[0], tokenizer)
        assert first["prompt"].endswith("<|assistant|>") and "Go away." not in first["prompt"]
    if fmt == "trl-kto":
        assert {e["label"] for e in loaded} == {True, False}


def _message(m: Any, roles: set[str]) -> None:
    assert isinstance(m, dict) and set(m) == {"role", "content"}
    assert m["role"] in roles and isinstance(m["content"], str)


def check_openai_chat(row: dict[str, Any]) -> None:
    """OpenAI supervised fine-tuning (chat): ``messages``, the last one the assistant's."""
    assert set(row) == {"messages"}
    for m in row["messages"]:
        _message(m, {"system", "user", "assistant"})
    assert row["messages"][-1]["role"] == "assistant"
    assert any(m["role"] == "user" for m in row["messages"])


def check_openai_dpo(row: dict[str, Any]) -> None:
    """OpenAI preference fine-tuning: ``input.messages``, one assistant message per output."""
    assert set(row) == {"input", "preferred_output", "non_preferred_output"}
    assert set(row["input"]) == {"messages"}
    for m in row["input"]["messages"]:
        _message(m, {"system", "user", "assistant"})
    assert row["input"]["messages"][-1]["role"] == "user"
    for side in ("preferred_output", "non_preferred_output"):
        assert isinstance(row[side], list) and len(row[side]) == 1
        _message(row[side][0], {"assistant"})
    assert row["preferred_output"] != row["non_preferred_output"]


def check_bedrock(row: dict[str, Any]) -> None:
    """Bedrock conversation fine-tuning: the schema version, an optional system list of
    ``{"text"}``, messages of user/assistant with content lists of ``{"text"}``, user first,
    turns alternating, the assistant's answer last."""
    assert row["schemaVersion"] == "bedrock-conversation-2024"
    assert set(row) <= {"schemaVersion", "system", "messages"}
    for part in row.get("system", []):
        assert set(part) == {"text"} and isinstance(part["text"], str)
    roles = [m["role"] for m in row["messages"]]
    assert roles[0] == "user" and roles[-1] == "assistant"
    assert all(a != b for a, b in itertools.pairwise(roles))
    for m in row["messages"]:
        assert set(m) == {"role", "content"} and m["role"] in ("user", "assistant")
        assert all(set(c) == {"text"} and isinstance(c["text"], str) for c in m["content"])


@pytest.mark.parametrize(
    ("fmt", "check"), [("openai-chat", check_openai_chat), ("openai-dpo", check_openai_dpo), ("bedrock", check_bedrock)]
)
def test_service_formats_have_the_documented_fields(
    sets: GenerationSets, fmt: str, check: Callable[[dict[str, Any]], None]
) -> None:
    rows = lines(export_sets(sets, fmt))
    assert rows
    for row in rows:
        check(row)


def test_bedrock_takes_the_system_prompt_out_of_the_messages(sets: GenerationSets) -> None:
    rows = lines(export_sets(sets, "bedrock"))
    npc = next(r for r in rows if "system" in r)
    assert npc["system"] == [{"text": "You are a blacksmith NPC."}]
    assert npc["messages"][0] == {"role": "user", "content": [{"text": "Can you fix my sword?"}]}


def test_held_out_part_exports_separately(sets: GenerationSets) -> None:
    held = lines(export_sets(sets, "trl-sft", part="held_out"))
    assert len(held) == len(sets.sft.held_out)
    with pytest.raises(ValidationError, match="part"):
        export_sets(sets, "trl-sft", part="everything")  # type: ignore[arg-type]


def test_a_format_of_another_set_is_a_clear_error(sets: GenerationSets) -> None:
    with pytest.raises(ValidationError, match=r"'trl-dpo' exports preference rows .*not SftRow.*trl-sft"):
        export_rows(sets.sft.train, "trl-dpo")
    with pytest.raises(ValidationError, match="format must be one of"):
        export_sets(sets, "csv")


def _model(task: str) -> Model:
    return Model("npc", task, (), "external", {}, Policy(), at(0))


def test_training_data_is_what_the_next_version_would_train_and_be_judged_on() -> None:
    answers = [served(f"p{i}", f"answer {i}", prompt=f"prompt {i}") for i in range(10)]
    events = [thumbs(a, True, when=i) for i, a in enumerate(answers)]
    model = _model("generation")
    train = lines(training_data(model, events, Policy.of(held_out_fraction=0.2), at(100), "openai-chat"))
    held = lines(training_data(model, events, Policy.of(held_out_fraction=0.2), at(100), "openai-chat", "held_out"))
    assert [r["messages"][-1]["content"] for r in held] == ["answer 8", "answer 9"]
    assert len(train) == 8
    # feedback after the cutoff is left out: 5 rows, the newest held out
    assert len(lines(training_data(model, events, Policy.of(held_out_fraction=0.2), at(4.5), "trl-sft"))) == 4
    sets = curate(events, Policy.of(held_out_fraction=0.2), at(100))
    stored = build_snapshot(sets).to_jsonl_gz()
    assert lines(snapshot_training_data(model, stored, "openai-chat", "held_out")) == held


def test_formats_and_tasks_must_match() -> None:
    with pytest.raises(ValidationError, match="generative: its training data exports as trl-sft"):
        training_data(_model("generation"), [], Policy(), at(0), "csv")
    with pytest.raises(ValidationError, match="is for generative models"):
        training_data(_model("classification"), [], Policy(), at(0), "trl-sft")
