"""JSON nesting depth: the raw-text scan agrees with the parsed value, strings do not count,
and stored values too deep for a serializer are handed over as text."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnloop.nesting import STORED_JSON_DEPTH, readable_json, text_too_deep, value_too_deep

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab, :'),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\k'), inner, max_size=3),
    max_leaves=40,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for i in range(levels):
        value = [value, "]]]"] if i % 2 else {"k": value, "s": "{{["}
    return value


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(min_value=0, max_value=6))
def test_the_text_scan_agrees_with_the_parsed_value(value: Any, limit: int) -> None:
    raw = json.dumps(value).encode()
    assert text_too_deep(raw, limit) == value_too_deep(value, limit) == (depth(value) > limit)


@pytest.mark.parametrize("levels", [31, 32, 33, 200])
def test_a_limit_is_the_deepest_nesting_allowed(levels: int) -> None:
    value = nested(levels)
    raw = json.dumps(value).encode()
    assert text_too_deep(raw, 32) is (levels > 32)
    assert value_too_deep(value, 32) is (levels > 32)


def test_brackets_inside_strings_and_escaped_quotes_do_not_count() -> None:
    raw = json.dumps({"text": "[" * 500 + '\\"{{{' + "}" * 10, "list": ['a"[[', "\\"]}).encode()
    assert not text_too_deep(raw, 2)


def test_wide_but_shallow_bodies_are_not_too_deep() -> None:
    raw = json.dumps({"items": [{"metadata": {"a": [1, 2]}} for _ in range(20_000)]}).encode()  # 5 deep
    assert not text_too_deep(raw, 5)
    assert text_too_deep(raw, 4)


def test_a_run_of_opening_brackets_is_found_without_parsing() -> None:
    assert text_too_deep(b"[" * 1_000_000, 32)  # not even valid JSON: refused as too deep first


def test_stored_values_within_the_depth_are_handed_over_as_they_are() -> None:
    value = nested(STORED_JSON_DEPTH)
    assert readable_json(value) is value
    assert readable_json(None) is None
    assert readable_json("text") == "text"


def test_stored_values_deeper_than_a_serializer_takes_become_text() -> None:
    value = nested(300)
    shown = readable_json(value)
    assert depth(shown) == 1
    assert json.loads(shown["json"]) == value
    assert "deeper than" in shown["unreadable"]


def test_a_stored_value_json_cannot_write_still_gets_a_stand_in() -> None:
    shown = readable_json({"nan": math.nan, "deep": nested(100_000)})  # beyond json.dumps' recursion
    assert shown["json"] is None
    assert depth(shown) == 1
