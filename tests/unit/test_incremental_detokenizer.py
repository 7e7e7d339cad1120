"""Incremental detokenization never emits half a UTF-8 character and its deltas add up to the
full decode."""

from __future__ import annotations

from pathlib import Path

import pytest

from learnloop.families.causal_lm import IncrementalDetokenizer

pytest.importorskip("transformers")

TEXTS = ["Les élèves étudient déjà", "日本語のテキスト", "mixed: café 日本 🙂 done", "plain ascii text"]


@pytest.mark.parametrize("text", TEXTS)
def test_deltas_are_whole_characters_that_add_up_to_the_text(tiny_llama_dir: Path, text: str) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    detokenizer = IncrementalDetokenizer(tokenizer)
    deltas = [detokenizer.add(token) for token in ids]
    deltas.append(detokenizer.flush())
    assert "".join(deltas) == text == detokenizer.text
    assert not any("\ufffd" in delta for delta in deltas)
    if any(ord(c) > 0x7FF for c in text):  # a 3-byte character spans several byte-level tokens
        assert "" in deltas[:-1]


def test_a_dangling_partial_character_is_flushed_as_the_full_decode_shows_it(tiny_llama_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    ids = tokenizer("ok 🙂", add_special_tokens=False)["input_ids"]
    partial = ids[:-1]  # the emoji's last byte is missing
    detokenizer = IncrementalDetokenizer(tokenizer)
    streamed = "".join(detokenizer.add(token) for token in partial)
    assert "\ufffd" not in streamed
    streamed += detokenizer.flush()
    assert streamed == tokenizer.decode(partial, skip_special_tokens=True)
