"""The golden split: stratified, reproducible, and a text never on both sides."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import uci_rows
from learnloop.curation import normalize_text, split_golden


@pytest.mark.parametrize("domain", ["yelp", "amazon_cells", "imdb"])
def test_shipped_data_split_is_stratified_and_reproducible(domain: str) -> None:
    rows = uci_rows(domain)
    train, golden = split_golden(rows, 0.2, seed=0)
    per_label = Counter(label for _, label in golden)
    assert set(per_label) == {"0", "1"}
    assert all(98 <= n <= 102 for n in per_label.values())  # 20% of each label's 500 distinct-ish texts
    assert len(train) + len(golden) == len(rows)
    assert split_golden(rows, 0.2, seed=0) == (train, golden)
    assert split_golden(rows, 0.2, seed=1)[1] != golden


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["good", "Good ", "bad", "BAD", "ok", "meh", "fine", "awful"]), st.sampled_from("ab")
        ),
        max_size=40,
    ),
    fraction=st.floats(min_value=0.05, max_value=0.5),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_a_text_never_lands_on_both_sides(rows: list[tuple[str, str]], fraction: float, seed: int) -> None:
    train, golden = split_golden(rows, fraction, seed)
    assert Counter(train + golden) == Counter(rows)
    assert not {normalize_text(t) for t, _ in train} & {normalize_text(t) for t, _ in golden}
