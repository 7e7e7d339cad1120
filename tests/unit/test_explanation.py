"""``families.explanation`` on models fitted here on the shipped UCI sentences: with three labels
(the sentence's source) as with two, with word n-grams, character n-grams and hashed features
that collide, a linear model's contributions plus its intercept are scikit-learn's decision
function for every label, and the words' shares add up to the terms'."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import uci_rows
from learnloop.families import get_family
from learnloop.families.explanation import LINEAR, explain, explain_by_occlusion, term_weights, top_terms

TEXTS = [
    "The plot was boring but the acting was superb.",
    "Battery died after two days!!  Never again.",
    "Great   food, friendly staff; we'll be back :)",
    "zzzz qqqq",  # no known term: the intercept alone
]


@pytest.fixture(scope="module")
def by_source() -> tuple[list[str], list[str]]:
    """Three labels: which site a sentence comes from."""
    texts, labels = [], []
    for domain in ("yelp", "amazon_cells", "imdb"):
        for text, _ in uci_rows(domain)[:400]:
            texts.append(text)
            labels.append(domain)
    return texts, labels


def _decision(predictor: Any, text: str) -> dict[str, float]:
    raw = np.atleast_1d(predictor.classifier.decision_function(predictor.features([text]))[0])
    classes = [str(c) for c in predictor.classifier.classes_]
    if len(classes) == 2:
        return {classes[0]: -float(raw[0]), classes[1]: float(raw[0])}
    return dict(zip(classes, map(float, raw), strict=True))


@pytest.mark.parametrize(
    ("family", "params"),
    [
        ("tfidf-logreg", {}),
        ("tfidf-logreg", {"analyzer": "char_wb", "ngram_min": 2, "ngram_max": 4}),
        ("incremental", {}),
        ("incremental", {"n_features": 1024}),  # hashed columns shared between terms
    ],
)
def test_contributions_and_intercept_are_the_decision_function(
    by_source: tuple[list[str], list[str]], family: str, params: dict[str, Any]
) -> None:
    texts, labels = by_source
    predictor = get_family(family).fit(texts, labels, label_set=sorted(set(labels)), params=params)
    for text in TEXTS:
        e = explain(predictor, text)
        assert e.method == LINEAR and e.scores is not None and e.intercept is not None
        assert (e.label, e.probabilities) == predictor.predict_one(text)
        decision = _decision(predictor, text)
        for label in decision:
            summed = e.intercept[label] + sum(t.contributions[label] for t in e.terms)
            assert summed == pytest.approx(decision[label], abs=1e-9)
            assert e.scores[label] == pytest.approx(decision[label], abs=1e-9)
        assert e.tokens, "every analyzer here maps its terms to the text's words"
        assert sum(t.contribution for t in e.tokens) == pytest.approx(
            sum(t.contributions[e.label] for t in e.terms), abs=1e-9
        )
        assert all(text[t.start : t.end] == t.text for t in e.tokens)


def test_two_labels_share_one_score_negated() -> None:
    rows = uci_rows("yelp")
    predictor = get_family("tfidf-logreg").fit(
        [t for t, _ in rows], [lab for _, lab in rows], label_set=["0", "1"], params={}
    )
    e = explain(predictor, "not good, but the dessert was great")
    assert e.scores is not None and e.scores["0"] == pytest.approx(-e.scores["1"])
    assert all(t.contributions["0"] == pytest.approx(-t.contributions["1"]) for t in e.terms)
    top = top_terms(term_weights(predictor), 5)
    assert "great" in [t.term for t in top["1"]] and "not" in [t.term for t in top["0"]]


def test_occlusion_is_the_probability_lost_without_each_word() -> None:
    """Any predictor: here the linear one, explained the model-agnostic way, checked by hand."""
    rows = uci_rows("amazon_cells")
    predictor = get_family("tfidf-logreg").fit(
        [t for t, _ in rows], [lab for _, lab in rows], label_set=["0", "1"], params={}
    )
    text = "Works great, but the battery is poor"
    e = explain_by_occlusion(predictor, text)
    full = predictor.predict_one(text)[1][e.label]
    poor = next(t for t in e.tokens if t.text == "poor")
    assert poor.contribution == pytest.approx(full - predictor.predict_one(text.replace("poor", ""))[1][e.label])
    assert e.scores is None and not e.truncated
