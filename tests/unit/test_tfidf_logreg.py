"""tfidf-logreg builds its TF-IDF features from term counts made once (``fit_many``): the
features, vocabulary and model are scikit-learn's ``TfidfVectorizer`` fitted on the same rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from conftest import uci_rows
from learnloop.families import term_counts
from learnloop.families.tfidf_logreg import TfidfLogRegFamily

FAMILY = TfidfLogRegFamily()
ROWS = uci_rows("yelp") + uci_rows("imdb")[:500]
TEXTS = [t for t, _ in ROWS]
LABELS = [label for _, label in ROWS]


def reference(texts: list[str], labels: list[str], params: dict[str, Any]) -> tuple[TfidfVectorizer, Any]:
    p = FAMILY.resolve_params(params)
    vectorizer = TfidfVectorizer(
        analyzer=p["analyzer"],
        ngram_range=(p["ngram_min"], p["ngram_max"]),
        min_df=p["min_df"],
        max_df=p["max_df"],
        max_features=p["max_features"],
        sublinear_tf=p["sublinear_tf"],
        dtype=np.float64,
    )
    with threadpool_limits(limits=1):
        features = vectorizer.fit_transform(texts)
        classifier = LogisticRegression(C=p["C"], max_iter=p["max_iter"], solver="liblinear", random_state=0)
        classifier.fit(features, np.asarray(labels, dtype=object))
    return vectorizer, classifier


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"min_df": 2, "max_df": 0.2},
        {"max_features": 300},  # many terms tie on their counts at the cut
        {"analyzer": "char_wb", "ngram_min": 2, "ngram_max": 4, "max_features": 2_000},
    ],
)
def test_each_subset_model_is_the_tfidf_vectorizer_fitted_on_its_rows(params: dict[str, Any]) -> None:
    subsets: list[list[int] | None] = [None, list(range(700)), list(range(300, len(TEXTS), 3))]
    fitted = FAMILY.fit_many(TEXTS, LABELS, subsets=subsets, label_set=["0", "1"], params=params)
    for rows, predictor in zip(subsets, fitted, strict=True):
        picked = range(len(TEXTS)) if rows is None else rows
        vectorizer, classifier = reference([TEXTS[i] for i in picked], [LABELS[i] for i in picked], params)
        assert predictor.vectorizer.vocabulary_ == vectorizer.vocabulary_
        np.testing.assert_array_equal(predictor.vectorizer.idf_, vectorizer.idf_)
        ours = predictor.vectorizer.transform(TEXTS)
        assert abs(ours - vectorizer.transform(TEXTS)).max() == 0.0
        # The same features and objective; the solver sums a row's terms in another order, so
        # it stops at another point within its tolerance (1e-4).
        theirs = classifier.predict_proba(vectorizer.transform(TEXTS))
        np.testing.assert_allclose(predictor.predict_proba(TEXTS), theirs, rtol=0, atol=1e-3)


def test_a_subset_with_one_label_is_refused_before_any_counting() -> None:
    from learnloop.errors import InsufficientDataError

    ones = [i for i, label in enumerate(LABELS) if label == "1"]
    with pytest.raises(InsufficientDataError):
        list(FAMILY.fit_many(TEXTS, LABELS, subsets=[None, ones], label_set=["0", "1"], params={}))


def test_the_vocabulary_maps_to_python_ints() -> None:
    """numpy integers in the vocabulary made saving a 300,000-term model ~10x slower."""
    predictor = FAMILY.fit(TEXTS, LABELS, label_set=["0", "1"], params={})
    assert {type(i) for i in predictor.vectorizer.vocabulary_.values()} == {int}


@pytest.mark.parametrize("params", [{}, {"max_features": 300}, {"analyzer": "char_wb", "ngram_min": 2, "ngram_max": 4}])
def test_a_fit_from_a_saved_version_counts_only_new_texts_and_gives_the_same_models(
    params: dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counts a version kept (some of its texts gone since, texts repeated, one with no term
    at all) stand in for counting: the same vocabulary, IDF and coefficients, bit for bit."""
    FAMILY.save(FAMILY.fit(TEXTS[:900], LABELS[:900], label_set=["0", "1"], params=params), tmp_path)
    saved = FAMILY.load(tmp_path)
    assert saved.train_counts is not None and len(saved.train_counts.keys) == len(set(TEXTS[:900]))
    texts, labels = [*TEXTS[100:], TEXTS[200], "!!"], [*LABELS[100:], LABELS[200], "1"]
    subsets: list[list[int] | None] = [None, list(range(600)), list(range(850, len(texts)))]
    fresh = list(FAMILY.fit_many(texts, labels, subsets=subsets, label_set=["0", "1"], params=params))
    counted: list[int] = []
    real = term_counts._counted

    def counting(texts: list[str], *args: Any, **kwargs: Any) -> Any:
        counted.append(len(texts))
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(term_counts, "_counted", counting)
    reused = FAMILY.fit_many(texts, labels, subsets=subsets, label_set=["0", "1"], params=params, previous=saved)
    for ours, theirs in zip(reused, fresh, strict=True):
        assert ours.vectorizer.vocabulary_ == theirs.vectorizer.vocabulary_
        np.testing.assert_array_equal(ours.vectorizer.idf_, theirs.vectorizer.idf_)
        np.testing.assert_array_equal(ours.classifier.coef_, theirs.classifier.coef_)
        np.testing.assert_array_equal(ours.classifier.intercept_, theirs.classifier.intercept_)
    assert counted == [sum(text not in set(TEXTS[:900]) for text in texts)]  # "!!" and the texts after 900


def test_counts_of_another_analyzer_are_not_reused(tmp_path: Any) -> None:
    FAMILY.save(FAMILY.fit(TEXTS, LABELS, label_set=["0", "1"], params={}), tmp_path)
    params = {"analyzer": "char_wb", "ngram_min": 2, "ngram_max": 3}
    reused = FAMILY.fit(TEXTS, LABELS, label_set=["0", "1"], params=params, previous=FAMILY.load(tmp_path))
    fresh = FAMILY.fit(TEXTS, LABELS, label_set=["0", "1"], params=params)
    assert reused.vectorizer.vocabulary_ == fresh.vectorizer.vocabulary_
    np.testing.assert_array_equal(reused.classifier.coef_, fresh.classifier.coef_)


def test_keep_counts_off_saves_no_counts(tmp_path: Any) -> None:
    FAMILY.save(FAMILY.fit(TEXTS, LABELS, label_set=["0", "1"], params={"keep_counts": False}), tmp_path)
    assert FAMILY.load(tmp_path).train_counts is None
    assert [p.name for p in tmp_path.iterdir()] == ["model.joblib"]


def test_a_version_saved_by_joblib_before_still_loads(tmp_path: Any) -> None:
    """Versions saved before the gzipped pickle (``joblib.dump``, no term counts) load and answer alike."""
    import joblib

    predictor = FAMILY.fit(TEXTS, LABELS, label_set=["0", "1"], params={})
    payload = {"vectorizer": predictor.vectorizer, "classifier": predictor.classifier, "labels": ["0", "1"]}
    joblib.dump(payload, tmp_path / "model.joblib", compress=3)
    loaded = FAMILY.load(tmp_path)
    assert loaded.train_counts is None
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS[:50]), predictor.predict_proba(TEXTS[:50]))
    FAMILY.save(predictor, tmp_path / "now")
    assert joblib.load(tmp_path / "now" / "model.joblib")["labels"] == ["0", "1"]  # what joblib reads too


@pytest.mark.parametrize("params", [{}, {"analyzer": "char_wb", "ngram_min": 2, "ngram_max": 4, "max_features": 2_000}])
def test_large_batches_scored_from_shared_counts_match_the_vectorizer(params: dict[str, Any]) -> None:
    """Two models scoring the same large batch (the second reads the counts the first made):
    features and probabilities are what each one's own ``vectorizer.transform`` gives."""
    batch = [*TEXTS, "zzqx unknownword", "!!", ""] * 2
    assert len(batch) >= term_counts.SHARED_MIN_TEXTS
    one = FAMILY.fit(TEXTS[:700], LABELS[:700], label_set=["0", "1"], params=params)
    two = FAMILY.fit(TEXTS[400:], LABELS[400:], label_set=["0", "1"], params=params)
    for model in (one, two, one):
        ours, theirs = model.features(batch), model.vectorizer.transform(batch)
        assert (ours != theirs).nnz == 0
        np.testing.assert_array_equal(ours.indices, theirs.indices)
        expected = model.classifier.predict_proba(theirs)
        np.testing.assert_array_equal(model.predict_proba(batch), expected)
