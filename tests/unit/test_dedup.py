"""Exact and near-duplicate detection, group ids for splits, and dedupe's keep-the-latest rule."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnloop.curation.dedup import dedupe, find_duplicate_groups, group_ids, lsh_bands, minhash_signatures
from learnloop.datasets import read_labelled, uci_sentiment_path
from learnloop.tasks.classification.labels import LabelledExample, normalize_text

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_exact_duplicates_after_normalisation_form_a_group() -> None:
    texts = ["Great  phone!", "awful battery", "great phone!", "  GREAT PHONE!  "]
    assert find_duplicate_groups(texts) == [[0, 2, 3]]


def test_near_duplicates_are_grouped_and_different_texts_are_not() -> None:
    texts = [
        "The battery life of this phone is excellent and it charges quickly.",
        "I would never buy this again, it broke after two days.",
        "The battery life of this phone is excellent and it charges quickly!!",
        "the battery life of this phone is excellent, and it charges quickly.",
        "The battery life of this phone is terrible and it charges slowly.",
    ]
    assert find_duplicate_groups(texts) == [[0, 2, 3]]
    assert find_duplicate_groups(texts, threshold=0.5) == [[0, 2, 3, 4]]


def test_word_shingles_find_reordered_clauses_less_readily_than_characters() -> None:
    texts = ["the food was cold but the staff were lovely", "the staff were lovely but the food was cold"]
    assert find_duplicate_groups(texts, threshold=0.5, unit="word", shingle=2) == [[0, 1]]
    assert find_duplicate_groups(texts, threshold=0.9, unit="word", shingle=2) == []


def _jaccard(a: str, b: str, k: int = 5) -> float:
    def shingles(text: str) -> set[str]:
        norm = normalize_text(text)
        return {norm[i : i + k] for i in range(max(len(norm) - k + 1, 1))}

    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def test_planted_near_copies_in_real_sentences_are_found_when_similar_enough() -> None:
    data = read_labelled(uci_sentiment_path("yelp"), text_column="0", label_column="1", header=False)
    rng = random.Random(0)
    texts = list(data.texts)
    planted = rng.sample(range(len(texts)), 60)
    for i in planted:  # an upper-cased copy with one more word: a near duplicate when the sentence is long
        texts.append(texts[i].upper() + " really")
    ids = group_ids(texts)
    similar = [k for k, i in enumerate(planted) if _jaccard(texts[i], texts[len(data.texts) + k]) >= 0.85]
    dissimilar = [k for k, i in enumerate(planted) if _jaccard(texts[i], texts[len(data.texts) + k]) < 0.8]
    assert len(similar) >= 15 and len(dissimilar) >= 15
    assert all(ids[len(data.texts) + k] == ids[planted[k]] for k in similar)
    assert not any(ids[len(data.texts) + k] == ids[planted[k]] for k in dissimilar)
    assert len(find_duplicate_groups(data.texts)) < 30  # the original 1,000 sentences are nearly all distinct


def test_group_ids_point_at_the_smallest_member_and_are_deterministic() -> None:
    texts = ["b", "a long enough sentence here", "c", "A long enough sentence here."]
    ids = group_ids(texts)
    assert ids == [0, 1, 2, 1]
    assert group_ids(texts) == ids
    assert group_ids([]) == []
    assert group_ids(["only"]) == [0]


def test_dedupe_keeps_the_latest_example_of_each_group_and_says_why_the_others_went() -> None:
    examples = [
        LabelledExample("Loved it, five stars. The battery lasts all week.", "pos", "bootstrap"),
        LabelledExample(
            "loved it,  five stars. the battery lasts all week.", "neg", "feedback:label", T0 + timedelta(hours=2), "f2"
        ),
        LabelledExample(
            "Loved it, five stars! The battery lasts all week!!", "pos", "feedback:label", T0 + timedelta(hours=1), "f1"
        ),
        LabelledExample("Terrible service at the front desk.", "neg", "bootstrap"),
        LabelledExample("Loved it, five stars. The battery lasts all the week.", "pos", "feedback:label", T0, "f0"),
    ]
    result = dedupe(examples)
    kept, dropped = result
    assert kept == [examples[1], examples[3]]
    # Punctuation is set aside: "week!!" and "week." are the same text; "all the week" is a near copy.
    assert [(d.index, d.kept_index, d.reason, d.label_differs) for d in dropped] == [
        (0, 1, "exact_duplicate", True),
        (2, 1, "exact_duplicate", True),
        (4, 1, "near_duplicate", True),
    ]
    assert result.counts() == {"exact_duplicate": 2, "near_duplicate": 1, "label_differs": 3}
    assert len(kept) + len(dropped) == len(examples)


def test_without_times_the_later_example_in_the_input_wins() -> None:
    examples = [LabelledExample("same text", "a", "bootstrap"), LabelledExample("Same text", "b", "bootstrap")]
    assert dedupe(examples).kept == [examples[1]]


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        lsh_bands(1.0, 128)
    with pytest.raises(ValueError, match="shingle"):
        minhash_signatures(["x"], shingle=0)


def test_lsh_bands_fit_the_number_of_hashes() -> None:
    bands, rows = lsh_bands(0.8, 128)
    assert bands * rows <= 128
    assert 0.6 < (1 / bands) ** (1 / rows) < 0.9  # the S-curve's midpoint sits near the threshold


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(st.sampled_from("abc de"), max_size=30), max_size=25))
def test_dedupe_accounts_for_every_example_and_leaves_no_duplicate_group(texts: list[str]) -> None:
    examples = [LabelledExample(t, "x", "bootstrap", T0 + timedelta(seconds=i)) for i, t in enumerate(texts)]
    kept, dropped = dedupe(examples)
    assert len(kept) + len(dropped) == len(examples)
    assert find_duplicate_groups([ex.text for ex in kept]) == []
    ids = group_ids(texts)
    assert len(kept) == len(set(ids))
