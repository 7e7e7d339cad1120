"""The preference data readers: the shipped Orca DPO sample, the Orca (Azure DPO) format and
HH-RLHF transcripts (benign made-up transcripts here)."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from learnloop.datasets import orca_dpo_sample_path, read_hh_rlhf, read_orca_dpo, read_orca_dpo_sample
from learnloop.errors import DataError

SAMPLE_SHA256 = "24f1f3bc3d2082bfb87f759a7d1545616449211d7260032484c0e23f6e3ef86b"


def test_the_shipped_orca_sample_is_40_pairs_of_a_system_and_user_prompt_and_two_different_answers() -> None:
    assert hashlib.sha256(orca_dpo_sample_path().read_bytes()).hexdigest() == SAMPLE_SHA256
    pairs = read_orca_dpo_sample()
    assert len(pairs) == 40
    for pair in pairs:
        assert [m["role"] for m in pair.messages] == ["system", "user"]
        assert pair.messages[-1]["content"]
        assert pair.chosen and pair.rejected and pair.chosen != pair.rejected
    # a row known from the source file (row 219): the preferred answer is the one-word name
    assert any(p.chosen == "Clarence" for p in pairs)


def _orca_line(user: str, chosen: str, rejected: str) -> str:
    return json.dumps(
        {
            "input": {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": user}]},
            "preferred_output": [{"role": "assistant", "content": chosen}],
            "non_preferred_output": [{"role": "assistant", "content": rejected}],
        }
    )


def test_orca_rows_without_a_pair_are_skipped_and_counted_and_bad_json_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "orca.jsonl"
    lines = [
        _orca_line("2+2?", " 4 ", "5"),
        _orca_line("same?", "yes", "yes"),  # identical answers: no preference
        json.dumps({"input": {"messages": []}}),  # no answers
        _orca_line("Capital of France?", "Paris.", "Lyon."),
    ]
    path.write_text("\n".join(lines))  # no newline at the end, as in the source file
    data = read_orca_dpo(path)
    assert data.skipped == 2
    assert [(p.messages[-1]["content"], p.chosen, p.rejected) for p in data.pairs] == [
        ("2+2?", "4", "5"),
        ("Capital of France?", "Paris.", "Lyon."),
    ]
    path.write_text(lines[0] + "\n{not json\n")
    with pytest.raises(DataError, match="line 2"):
        read_orca_dpo(path)


def test_hh_transcripts_become_chat_turns_up_to_the_last_answer_from_a_gzip_file(tmp_path: Path) -> None:
    shared = "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Name a fruit."
    rows = [
        {"chosen": shared + "\n\nAssistant: An apple.", "rejected": shared + "\n\nAssistant: I won't."},
        {"chosen": "\n\nHuman: A\n\nAssistant: B", "rejected": "\n\nHuman: C\n\nAssistant: B"},  # prompts differ
        {
            "chosen": "\n\nHuman: Q\n\nHuman: more\n\nAssistant: x",
            "rejected": "\n\nHuman: Q\n\nHuman: more\n\nAssistant: y",
        },
    ]
    path = tmp_path / "hh.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows))
    data = read_hh_rlhf(path)
    assert data.skipped == 1
    first, merged = data.pairs
    assert [dict(m) for m in first.messages] == [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Name a fruit."},
    ]
    assert (first.chosen, first.rejected) == ("An apple.", "I won't.")
    assert [dict(m) for m in merged.messages] == [{"role": "user", "content": "Q\n\nmore"}]
