"""The incremental family continues its previous version: only examples it never saw, with
replayed earlier ones, so an update is cheap and does not forget the old data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from conftest import uci_rows
from learnloop.artifacts import LocalArtifactStore
from learnloop.families import get_family
from learnloop.families.incremental import IncrementalPredictor
from learnloop.families.manifest import load_predictor, save_predictor

FAMILY = get_family("incremental")
LABELS = ["0", "1"]


def rows(domain: str, start: int, stop: int) -> tuple[list[str], list[str]]:
    found = uci_rows(domain)[start:stop]
    return [t for t, _ in found], [lab for _, lab in found]


def accuracy(predictor: IncrementalPredictor, texts: list[str], labels: list[str]) -> float:
    predicted = [LABELS[i] for i in predictor.predict_proba(texts).argmax(axis=1)]
    return float(np.mean([p == t for p, t in zip(predicted, labels, strict=True)]))


def fit(texts: list[str], labels: list[str], previous: IncrementalPredictor | None = None) -> IncrementalPredictor:
    predictor = FAMILY.fit(texts, labels, label_set=LABELS, params={"replay_size": 400}, seed=3, previous=previous)
    assert isinstance(predictor, IncrementalPredictor)
    return predictor


def test_an_update_learns_the_new_domain_without_forgetting_the_old_one(tmp_path: Path) -> None:
    old_texts, old_labels = rows("yelp", 0, 700)
    new_texts, new_labels = rows("imdb", 0, 700)
    first = fit(old_texts, old_labels)
    store = LocalArtifactStore(tmp_path)
    loaded = load_predictor(store, save_predictor(store, "models/m/v1", FAMILY.key, first, {}))
    assert isinstance(loaded, IncrementalPredictor)
    # a retrain passes everything it has; the family updates with what the version never saw
    updated = fit(old_texts + new_texts, old_labels + new_labels, previous=loaded)
    assert updated.seen == first.seen | frozenset(fit(new_texts, new_labels).seen)
    assert len(updated.replay) == 400
    held_old, held_old_labels = rows("yelp", 700, 1000)
    held_new, held_new_labels = rows("imdb", 700, 1000)
    assert accuracy(updated, held_new, held_new_labels) > accuracy(first, held_new, held_new_labels) + 0.03
    assert accuracy(updated, held_old, held_old_labels) > accuracy(first, held_old, held_old_labels) - 0.05
    # the same update from the version in memory and from its saved artifact
    again = fit(old_texts + new_texts, old_labels + new_labels, previous=first)
    np.testing.assert_array_equal(again.predict_proba(held_new), updated.predict_proba(held_new))


def test_nothing_new_leaves_the_model_as_it_was() -> None:
    texts, labels = rows("yelp", 0, 300)
    first = fit(texts, labels)
    same = fit(texts, labels, previous=first)
    np.testing.assert_array_equal(same.predict_proba(texts), first.predict_proba(texts))


def test_a_label_the_previous_version_never_saw_means_training_from_scratch() -> None:
    texts, labels = rows("yelp", 0, 300)
    first = FAMILY.fit(texts, labels, label_set=["0", "1", "2"], params={}, seed=0)
    extra = ["a third kind of text entirely", "another text of the third kind"]
    grown = FAMILY.fit(texts + extra, [*labels, "2", "2"], label_set=["0", "1", "2"], params={}, seed=0, previous=first)
    assert [str(c) for c in grown.classifier.classes_] == ["0", "1", "2"]  # type: ignore[attr-defined]


def test_another_family_or_other_hashing_is_not_continued() -> None:
    texts, labels = rows("yelp", 0, 300)
    tfidf = get_family("tfidf-logreg").fit(texts, labels, label_set=LABELS, params={})
    scratch = fit(texts, labels)
    np.testing.assert_array_equal(fit(texts, labels, previous=tfidf).predict_proba(texts), scratch.predict_proba(texts))
    narrow = FAMILY.fit(texts, labels, label_set=LABELS, params={"n_features": 2**12}, seed=3, previous=scratch)
    assert narrow.hashing["n_features"] == 2**12  # type: ignore[attr-defined]


def chain_of_updates(step: float) -> tuple[float, float]:
    """Yelp, then Amazon phone reviews arriving 50 at a time with one label in ten wrong (as
    feedback is), each batch an update of the last version (the loop's pattern): the mean
    accuracy on held-out Yelp sentences of the updates, and of fits from scratch on the same
    data at the same points."""
    params = {"replay_size": 400, "update_step": step}
    texts, labels = rows("yelp", 0, 600)
    held, held_labels = rows("yelp", 600, 1000)
    predictor = FAMILY.fit(texts, labels, label_set=LABELS, params=params, seed=3)
    new_texts, new_labels = rows("amazon_cells", 0, 500)
    new_labels = [LABELS[1 - LABELS.index(lab)] if i % 10 == 0 else lab for i, lab in enumerate(new_labels)]
    updated, scratch = [], []
    for start in range(0, 500, 50):
        texts, labels = texts + new_texts[start : start + 50], labels + new_labels[start : start + 50]
        predictor = FAMILY.fit(texts, labels, label_set=LABELS, params=params, seed=start, previous=predictor)
        refit = FAMILY.fit(texts, labels, label_set=LABELS, params=params, seed=start)
        assert isinstance(predictor, IncrementalPredictor) and isinstance(refit, IncrementalPredictor)
        updated.append(accuracy(predictor, held, held_labels))
        scratch.append(accuracy(refit, held, held_labels))
    return float(np.mean(updated)), float(np.mean(scratch))


def test_small_updates_on_a_new_domain_keep_the_old_one_as_a_refit_does() -> None:
    updated, scratch = chain_of_updates(0.5)  # the default
    assert updated > scratch - 0.01
    # the schedule of a fit from scratch, continued (steps of ~3-10), is what forgot
    overshot, _ = chain_of_updates(8.0)
    assert overshot < updated - 0.015
