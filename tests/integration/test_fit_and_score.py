"""fit_and_score: labels, probabilities and latency of the candidate and the champion."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from conftest import uci_rows
from learnloop.tasks.classification.fit import TrainSpec, fit_and_score


def spec(tmp_path: Path, key: str, champion_uri: str | None = None) -> TrainSpec:
    rows = uci_rows("yelp")
    train, golden = rows[:700], rows[700:]
    return TrainSpec(
        family="tfidf-logreg",
        params={},
        label_set=["1", "0"],  # not sorted: the probabilities follow this order
        texts=[t for t, _ in train],
        labels=[lab for _, lab in train],
        eval_sets={"golden": [t for t, _ in golden], "recent": [t for t, _ in golden[:20]]},
        artifact_url=tmp_path.as_uri(),
        artifact_key=key,
        champion_uri=champion_uri,
        latency_samples=50,
    )


def test_fit_and_score_returns_probabilities_in_label_set_order_and_latency(tmp_path: Path) -> None:
    first = fit_and_score(spec(tmp_path, "v1"))
    assert first.champion is None and first.champion_proba is None
    proba = first.candidate_proba["golden"]
    assert proba.shape == (300, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert first.candidate["golden"] == [["1", "0"][i] for i in proba.argmax(axis=1)]
    truth = np.array([["1", "0"].index(lab) for _, lab in uci_rows("yelp")[700:]])
    assert proba[np.arange(300), truth].mean() > 0.6  # a swapped column would put it below 0.4
    assert first.candidate_proba["recent"].shape == (20, 2)
    assert len(first.latency_ms) == 50 and all(0 < ms < 1000 for ms in first.latency_ms)

    second = fit_and_score(spec(tmp_path, "v2", champion_uri=first.artifact_uri))
    assert second.champion == first.candidate
    assert second.champion_proba is not None
    np.testing.assert_allclose(second.champion_proba["golden"], proba)


def test_weights_reach_the_fit_and_every_forward_chaining_fold(tmp_path: Path) -> None:
    from dataclasses import replace

    from learnloop.tasks.classification.fit import FoldSpec

    base = spec(tmp_path, "w")
    n = len(base.texts)
    # Flip every label, then weigh the flipped copies down to nothing against the originals.
    texts = base.texts + base.texts
    labels = base.labels + ["0" if lab == "1" else "1" for lab in base.labels]
    fold = FoldSpec(train=list(range(n)) + list(range(n, 2 * n)), evaluate=list(range(600, 650)))
    common = {
        "texts": texts,
        "labels": labels,
        "folds": [fold],
        "eval_sets": {**base.eval_sets, "recent": texts[600:650]},
    }
    heavy_truth = replace(base, artifact_key="a", weights=[1.0] * n + [1e-3] * n, **common)
    heavy_flip = replace(base, artifact_key="b", weights=[1e-3] * n + [1.0] * n, **common)
    truth = [lab for _, lab in uci_rows("yelp")[700:]]
    a, b = fit_and_score(heavy_truth), fit_and_score(heavy_flip)
    agree_a = np.mean([p == t for p, t in zip(a.candidate["golden"], truth, strict=True)])
    agree_b = np.mean([p == t for p, t in zip(b.candidate["golden"], truth, strict=True)])
    assert agree_a > 0.65 and agree_b < 0.35
    # The fold model learned with the same weights: it reproduces the labels that weighed most.
    seen = [base.labels[i] for i in range(600, 650)]
    assert np.mean([p == t for p, t in zip(a.candidate["recent"], seen, strict=True)]) > 0.9
    assert np.mean([p != t for p, t in zip(b.candidate["recent"], seen, strict=True)]) > 0.9


def test_the_candidate_starts_from_the_champion_where_its_family_can(tmp_path: Path) -> None:
    """An incremental model's retrain continues the champion: it trains on what the champion
    never saw (here: nothing new), so the candidate answers as the champion does."""
    from dataclasses import replace

    from learnloop.artifacts import open_store
    from learnloop.families.incremental import IncrementalPredictor
    from learnloop.families.manifest import load_predictor

    first = fit_and_score(replace(spec(tmp_path, "v1"), family="incremental"))
    second = fit_and_score(replace(spec(tmp_path, "v2", champion_uri=first.artifact_uri), family="incremental"))
    np.testing.assert_array_equal(second.candidate_proba["golden"], first.candidate_proba["golden"])
    scratch = fit_and_score(replace(spec(tmp_path, "v3"), family="incremental", seed=1))
    assert not np.array_equal(scratch.candidate_proba["golden"], first.candidate_proba["golden"])
    candidate = load_predictor(open_store(tmp_path.as_uri()), second.artifact_uri)
    assert isinstance(candidate, IncrementalPredictor) and len(candidate.seen) == len(set(spec(tmp_path, "x").texts))


def test_a_champion_that_learnt_erased_data_is_not_continued(tmp_path: Path) -> None:
    """An incremental candidate continued from its champion keeps the champion's replay buffer;
    once a subject's data is erased the retrain starts afresh, so none of it lives on."""
    from dataclasses import replace

    from learnloop.artifacts import open_store
    from learnloop.families.incremental import IncrementalPredictor
    from learnloop.families.manifest import load_predictor

    base = replace(spec(tmp_path, "v1"), family="incremental")
    erased = set(base.texts[:100])
    first = fit_and_score(base)
    kept = replace(base, texts=base.texts[100:], labels=base.labels[100:], champion_uri=first.artifact_uri)
    store = open_store(tmp_path.as_uri())

    def replayed(key: str, **changes: object) -> set[str]:
        result = fit_and_score(replace(kept, artifact_key=key, **changes))  # type: ignore[arg-type]
        predictor = load_predictor(store, result.artifact_uri)
        assert isinstance(predictor, IncrementalPredictor)
        return set(predictor.replay.texts)

    assert replayed("v2") & erased  # continued: the champion's buffer holds texts gone from the data
    assert not replayed("v3", continue_champion=False) & erased
