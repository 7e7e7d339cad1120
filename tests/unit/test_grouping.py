"""A grouping kept for the texts that do not change, extended with new ones, gives exactly the
groups of grouping everything at once; a kept grouping of other texts is never applied."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import uci_rows
from learnloop.artifacts import LocalArtifactStore
from learnloop.curation.dedup import group_ids
from learnloop.curation.grouping import STAR_ABOVE, Grouping, GroupingSettings
from learnloop.domain import Model
from learnloop.policy import Policy
from learnloop.tasks.base import RetrainInputs
from learnloop.tasks.classification.retrain import grouping_key, kept_grouping


def _texts() -> list[str]:
    rng = random.Random(3)
    base = [t for t, _ in uci_rows("yelp")[:300]]
    copies = [t.upper() + " really" for t in rng.sample(base, 40)]  # near copies
    joined = [f"{a} {b}" for a, b in zip(rng.sample(base, 80), rng.sample(base, 80), strict=True)]  # shared halves
    # one LSH bucket of more than STAR_ABOVE distinct near-identical texts
    crowd = [f"the waiter brought the wrong dish again and again {k}" for k in range(STAR_ABOVE + 25)]
    texts = base + copies + joined + crowd + base[:10]  # and exact repeats
    rng.shuffle(texts)
    return texts


TEXTS = _texts()


@settings(max_examples=15, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(TEXTS)), threshold=st.sampled_from([0.5, 0.8, 0.85, 1.0]))
def test_extending_a_kept_grouping_gives_the_groups_of_grouping_everything(cut: int, threshold: float) -> None:
    s = GroupingSettings(threshold=threshold)
    kept = Grouping.of(TEXTS[:cut], s)
    assert kept.extended(TEXTS[:cut], TEXTS[cut:]).ids() == group_ids(TEXTS, threshold=threshold)


def test_a_crowded_bucket_compares_its_first_members_pairwise_and_groups_them() -> None:
    crowd = [f"the waiter brought the wrong dish again and again {k}" for k in range(STAR_ABOVE + 25)]
    assert set(group_ids(crowd, threshold=0.5)) == {0}


def test_a_kept_grouping_refuses_texts_it_was_not_made_of() -> None:
    s = GroupingSettings(threshold=0.85)
    kept = Grouping.of(TEXTS[:100], s)
    erased = TEXTS[:50] + TEXTS[51:100]  # one row gone since
    with pytest.raises(ValueError, match="not the ones"):
        kept.extended(erased, ["a new text"])
    with pytest.raises(ValueError, match="not the ones"):
        kept.extended([*TEXTS[:99], "another text"], [])


def test_a_grouping_survives_its_bytes_under_the_same_settings_only() -> None:
    s = GroupingSettings(threshold=0.85)
    kept = Grouping.of(TEXTS[:200], s)
    again = Grouping.from_bytes(kept.to_bytes(), s)
    assert again is not None
    assert again.key == kept.key
    assert again.extended(TEXTS[:200], TEXTS[200:]).ids() == group_ids(TEXTS, threshold=0.85)
    assert Grouping.from_bytes(kept.to_bytes(), GroupingSettings(threshold=0.8)) is None


def _inputs(tmp_path: Path, bootstrap: list[tuple[str, str]], golden: list[tuple[str, str]]) -> RetrainInputs:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    model = Model("m", "classification", ("0", "1"), "tfidf-logreg", {}, Policy(), now)
    url = (tmp_path / "artifacts").as_uri()
    return RetrainInputs(model, None, None, now, bootstrap, golden, [], url, "models/m/v1")


def test_the_retrain_keeps_one_grouping_per_model_and_makes_it_again_when_a_row_is_gone(tmp_path: Path) -> None:
    rows = uci_rows("yelp")
    golden, bootstrap = rows[:100], rows[100:400]
    store = LocalArtifactStore(tmp_path / "artifacts")
    first = kept_grouping(_inputs(tmp_path, bootstrap, golden))
    stored = store.get_bytes(grouping_key("m"))
    assert first.n_texts == 400  # golden and bootstrap rows only: feedback is never kept
    assert kept_grouping(_inputs(tmp_path, bootstrap, golden)).key == first.key  # read back
    assert store.get_bytes(grouping_key("m")) == stored
    fewer = bootstrap[:10] + bootstrap[11:]  # a row removed since
    again = kept_grouping(_inputs(tmp_path, fewer, golden))
    assert again.n_texts == 399
    assert Grouping.from_bytes(store.get_bytes(grouping_key("m")), again.settings).key == again.key  # replaced
    store.put_bytes(grouping_key("m"), b"not a grouping")
    assert kept_grouping(_inputs(tmp_path, fewer, golden)).key == again.key  # a damaged file is made again
