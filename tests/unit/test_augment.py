"""Synthetic rows for thin classes (``curation.augment``) and where a snapshot puts them:
training only, marked, deterministic, off by default."""

from __future__ import annotations

import gzip
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from conftest import uci_rows
from learnloop.curation.augment import MAX_PER_SOURCE, augment_thin
from learnloop.curation.grouping import Grouping, GroupingSettings
from learnloop.errors import ValidationError
from learnloop.policy import Policy
from learnloop.tasks.classification import LabelledExample, build_snapshot

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rows(n_pos: int, n_neg: int) -> list[tuple[str, str]]:
    data = uci_rows("yelp")
    pos = [r for r in data if r[1] == "1"][:n_pos]
    neg = [r for r in data if r[1] == "0"][:n_neg]
    return [*pos, *neg]


def test_only_thin_classes_get_synthetic_rows_up_to_the_minimum_from_their_own_rows() -> None:
    data = rows(40, 6)
    made = augment_thin(data, min_examples=20, seed=0)
    assert Counter(r.label for r in made) == {"0": 14}
    assert {r.source for r in made} == set(range(40, 46))  # the thin class's own rows, each used
    real = {text for text, _ in data}
    assert sum(r.text not in real for r in made) >= 10  # changed texts, not copies
    assert {r.operation for r in made} <= {"swap", "delete", "insert"} and len({r.operation for r in made}) > 1


def test_the_same_rows_and_seed_give_the_same_synthetic_rows_and_another_seed_others() -> None:
    data = rows(30, 5)
    assert augment_thin(data, min_examples=15, seed=3) == augment_thin(list(data), min_examples=15, seed=3)
    assert augment_thin(data, min_examples=15, seed=3) != augment_thin(data, min_examples=15, seed=4)


def test_a_class_with_one_row_is_not_copied_without_bound_and_no_thin_class_adds_nothing() -> None:
    data = rows(30, 1)
    assert len(augment_thin(data, min_examples=500, seed=0)) == MAX_PER_SOURCE * 31  # both classes are thin here
    assert augment_thin(rows(30, 30), min_examples=20, seed=0) == []
    assert augment_thin(data, min_examples=0, seed=0) == []


@pytest.mark.parametrize("method", ["swap", "delete", "insert"])
def test_each_single_operation_is_applied_alone(method: str) -> None:
    made = augment_thin(rows(20, 4), min_examples=12, method=method, seed=1)
    assert len(made) == 8 and {r.operation for r in made} == {method}


def test_the_policy_refuses_an_unknown_method_and_a_negative_minimum() -> None:
    with pytest.raises(ValidationError, match="augment_method"):
        Policy.of(augment_method="wordnet")
    with pytest.raises(ValidationError, match="augment_min_examples"):
        Policy.of(augment_min_examples=-1)


def feedback(data: list[tuple[str, str]], start: int) -> list[LabelledExample]:
    return [
        LabelledExample(text, label, "feedback:label", T0 + timedelta(seconds=start + i), f"f{start + i}")
        for i, (text, label) in enumerate(data)
    ]


def snapshot_kwargs() -> dict[str, object]:
    data = rows(60, 12)
    bootstrap = data[:30] + data[60:66]  # 30 pos, 6 neg
    later = data[30:60] + data[66:72]  # feedback the champion never saw: judged by the folds
    return {
        "bootstrap": bootstrap,
        "feedback": feedback(later, 0),
        "golden_texts": [t for t, _ in uci_rows("yelp")[-50:]],
        "champion_cutoff": T0 - timedelta(days=1),
        "cutoff": T0 + timedelta(days=1),
    }


def test_augmentation_is_off_by_default_and_the_snapshot_is_unchanged() -> None:
    assert Policy().curation.augment_min_examples == 0
    snap = build_snapshot(policy=Policy(), **snapshot_kwargs())  # type: ignore[arg-type]
    assert not any(ex.source.startswith("synthetic") for ex in snap.train)
    assert "augmented" not in snap.counts and "train_synthetic" not in snap.counts


def test_synthetic_rows_are_marked_train_every_fold_and_are_judged_by_none() -> None:
    kwargs = snapshot_kwargs()
    snap = build_snapshot(policy=Policy.of(augment_min_examples=20, recent_blocks=3), **kwargs)  # type: ignore[arg-type]
    synthetic = [i for i, ex in enumerate(snap.train) if ex.source.startswith("synthetic:")]
    real_neg = sum(1 for ex in snap.train if ex.label == "0" and not ex.source.startswith("synthetic"))
    assert len(synthetic) == 20 - real_neg == snap.counts["train_synthetic"]
    assert all(snap.train[i].label == "0" and snap.train[i].feedback_id is None for i in synthetic)
    judged = {i for fold in snap.folds for i in fold.evaluate}
    assert snap.folds and not judged & set(synthetic)
    assert all(set(synthetic) <= set(fold.train) for fold in snap.folds)
    # made only from rows no fold judges: every source text is on the training side
    training_side = " ".join(ex.text for ex in snap.train[: snap.first_judged])
    assert all(word in training_side for i in synthetic for word in snap.train[i].text.split())
    recorded = snap.counts["augmented"]
    assert recorded["method"] == "eda" and recorded["by_label"] == {"0": len(synthetic)}
    assert sum(recorded["by_operation"].values()) == len(synthetic)
    assert snap.counts["train_feedback"] == len(kwargs["feedback"])  # type: ignore[arg-type]
    stored = gzip.decompress(snap.to_jsonl_gz()).decode()
    assert stored.count('"source":"synthetic:') == len(synthetic)


def test_the_snapshot_with_synthetic_rows_is_reproducible_and_its_seed_is_in_its_hash() -> None:
    kwargs = snapshot_kwargs()
    one = build_snapshot(policy=Policy.of(augment_min_examples=20), **kwargs)  # type: ignore[arg-type]
    again = build_snapshot(policy=Policy.of(augment_min_examples=20), **kwargs)  # type: ignore[arg-type]
    other = build_snapshot(policy=Policy.of(augment_min_examples=20, augment_seed=7), **kwargs)  # type: ignore[arg-type]
    assert one.hash == again.hash and one.train == again.train
    assert other.hash != one.hash


def test_a_variant_that_is_a_near_copy_of_a_golden_text_is_dropped() -> None:
    kwargs = snapshot_kwargs()
    policy = Policy.of(augment_min_examples=20)
    plain = build_snapshot(policy=policy, **kwargs)  # type: ignore[arg-type]
    settings = GroupingSettings(threshold=policy.curation.dedup_threshold)
    # a variant that is no near copy of its source (a swap in a short text), so the source stays
    real = [ex.text for ex in plain.train if not ex.source.startswith("synthetic")]
    variant = next(
        ex.text
        for ex in plain.train
        if ex.source.startswith("synthetic") and len(set(Grouping.of([ex.text, *real], settings).ids()[1:]) & {0}) == 0
    )
    kwargs["golden_texts"] = [*kwargs["golden_texts"], variant]  # type: ignore[list-item]
    snap = build_snapshot(policy=policy, **kwargs)  # type: ignore[arg-type]
    assert [ex.text for ex in snap.train if not ex.source.startswith("synthetic")] == real
    assert variant not in {ex.text for ex in snap.train}
    assert snap.counts["augmented"]["dropped_near_golden"] >= 1
