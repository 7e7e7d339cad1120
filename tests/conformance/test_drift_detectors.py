"""Every registered drift detector passes the same checks, on synthetic traffic and on the shipped
UCI sentences (a real Yelp -> IMDB / Amazon domain shift through a real tfidf-logreg model).

Synthetic traffic: texts drawn from a Zipfian "home" vocabulary of made-up words (``away``:
the share of words drawn from a disjoint vocabulary instead), 1 + Poisson(mean_words - 1) words
each; binary probabilities from a logit ``+-sharpness + N(0, 1)`` whose sign is positive with
probability ``positive_rate``; a text answer to each text (what a generative model's window
holds): a refusal with probability ``refusal_rate``, else 1 + Poisson(response_words - 1) home
words, drawn from a stream of their own so the texts and probabilities are those of the same
seed without answers. Every window has its own seed, so windows are independent.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest

import learnloop.drift as drift
from conftest import uci_rows
from learnloop.drift import (
    DETECTORS,
    DriftDetector,
    DriftResult,
    ReferenceData,
    Window,
    check_all,
    fit_all,
    get_detector,
)
from learnloop.errors import ArtifactError, ValidationError
from learnloop.families import get_family
from learnloop.families.tfidf_logreg import TfidfLogRegPredictor

DETECTOR_KEYS = sorted(DETECTORS)
LABELS = ("neg", "pos")
SUMMARY_MAX_BYTES = 200_000
SAME_WINDOWS = 20
SAME_WINDOW_SIZE = 500
MAX_FALSE_ALARMS = 1
"""Of 20 same-distribution windows at most one may alarm. Each alarm needs p < 0.05 *and* an
effect above the threshold, so the expected count is below one (it is 0 for every detector with
these seeds); a bound of one still fails a detector whose p-values or effects are miscalibrated."""


# -- synthetic traffic -------------------------------------------------------------------------


def _made_up_words(n: int, seed: int, suffix: str) -> list[str]:
    rng = np.random.default_rng(seed)
    consonants, vowels = "bcdfghjklmnprstvz", "aeiou"
    words: dict[str, None] = {}
    while len(words) < n:
        syllables = int(rng.integers(2, 4))
        word = "".join(consonants[rng.integers(17)] + vowels[rng.integers(5)] for _ in range(syllables))
        words.setdefault(word + suffix)
    return list(words)


VOCABULARY_SIZE = 3_000
HOME = np.array(_made_up_words(VOCABULARY_SIZE, 1, ""), dtype=object)
AWAY = np.array(_made_up_words(VOCABULARY_SIZE, 2, "x"), dtype=object)
ZIPF = 1.0 / np.arange(1, VOCABULARY_SIZE + 1)
ZIPF /= ZIPF.sum()


REFUSAL = "I'm sorry, but I can't help with that."


@dataclass(frozen=True)
class Traffic:
    mean_words: float = 12.0
    away: float = 0.0
    positive_rate: float = 0.5
    sharpness: float = 2.0
    response_words: float = 10.0
    refusal_rate: float = 0.05

    def texts(self, n: int, rng: np.random.Generator) -> list[str]:
        sizes = 1 + rng.poisson(self.mean_words - 1, n)
        total = int(sizes.sum())
        index = rng.choice(VOCABULARY_SIZE, size=total, p=ZIPF)
        words = np.where(rng.random(total) < self.away, AWAY[index], HOME[index]).tolist()
        ends = np.cumsum(sizes).tolist()
        return [" ".join(words[end - size : end]) for end, size in zip(ends, sizes.tolist(), strict=True)]

    def probabilities(self, n: int, rng: np.random.Generator) -> np.ndarray:
        positive = rng.random(n) < self.positive_rate
        logit = np.where(positive, self.sharpness, -self.sharpness) + rng.normal(size=n)
        p = 1.0 / (1.0 + np.exp(-logit))
        return np.column_stack([1.0 - p, p])

    def responses(self, n: int, rng: np.random.Generator) -> list[str]:
        answers = replace(self, mean_words=self.response_words, away=0.0).texts(n, rng)
        refused = rng.random(n) < self.refusal_rate
        return [REFUSAL if r else a for a, r in zip(answers, refused.tolist(), strict=True)]

    def window(self, n: int, seed: int) -> Window:
        rng = np.random.default_rng(seed)
        texts, probabilities = self.texts(n, rng), self.probabilities(n, rng)
        return Window(texts, probabilities, LABELS, self.responses(n, np.random.default_rng([seed, 1])))

    def reference(self, n: int, seed: int) -> ReferenceData:
        window = self.window(n, seed)
        return ReferenceData(window.texts, window.probabilities, LABELS, responses=window.responses)


SAME = Traffic()
CLEAR_SHIFTS: dict[str, Traffic] = {
    "prediction": Traffic(positive_rate=0.75),  # a quarter of the predictions change label
    "confidence": Traffic(sharpness=1.0),  # the model is much less sure
    "text_length": Traffic(mean_words=20.0),  # texts two-thirds longer
    "oov": Traffic(away=0.15),  # 15% of the words from a vocabulary never seen
    "multivariate": Traffic(away=0.3),  # a new topic
    "response_length": Traffic(response_words=17.0),  # answers two-thirds longer
    "refusal": Traffic(refusal_rate=0.2),  # four times as many refusals
}
TRIVIAL_SHIFT = Traffic(
    mean_words=12.4, away=0.01, positive_rate=0.52, sharpness=1.9, response_words=10.3, refusal_rate=0.06
)
"""Each detector's statistic moves a little (2 points of positive rate, 3% longer texts and
answers, 1% unknown words, slightly less confidence, 1 point more refusals): real, but not worth
an alarm."""
HUGE_WINDOW = 200_000
BOUNDED_SAMPLE = {"multivariate"}
"""Detectors that test a bounded sample of the window: a huge window does not raise their power."""


@pytest.fixture(params=DETECTOR_KEYS)
def detector(request: pytest.FixtureRequest) -> DriftDetector:
    return DETECTORS[request.param]


@pytest.fixture(scope="module")
def reference() -> ReferenceData:
    return SAME.reference(5_000, seed=0)


@pytest.fixture(scope="module")
def summaries(reference: ReferenceData) -> dict[str, dict[str, Any]]:
    return fit_all(reference)


@pytest.fixture(scope="module")
def large_reference() -> ReferenceData:
    return SAME.reference(50_000, seed=1)


@pytest.fixture(scope="module")
def large_summaries(large_reference: ReferenceData) -> dict[str, dict[str, Any]]:
    return fit_all(large_reference)


# -- the protocol ------------------------------------------------------------------------------


def test_detector_follows_the_protocol(detector: DriftDetector) -> None:
    assert isinstance(detector, DriftDetector)
    assert DETECTORS[detector.key] is detector
    assert get_detector(detector.key) is detector
    assert detector.description
    module = __import__(type(detector).__module__, fromlist=["_"])
    assert module.__doc__ and "threshold" in module.__doc__  # every file states its thresholds
    assert 0 < detector.alpha < 1 and detector.effect_threshold > 0
    assert detector.min_window >= 1 and detector.min_reference >= 1


def test_summary_round_trips_through_json_and_checks_the_same(
    detector: DriftDetector, summaries: dict[str, dict[str, Any]]
) -> None:
    summary = summaries[detector.key]
    restored = json.loads(json.dumps(summary, allow_nan=False))
    assert restored == summary
    window = SAME.window(SAME_WINDOW_SIZE, seed=11)
    assert detector.check(restored, window) == detector.check(summary, window)


def test_summary_stays_small_for_a_large_reference(
    detector: DriftDetector, large_summaries: dict[str, dict[str, Any]]
) -> None:
    size = len(json.dumps(large_summaries[detector.key]))
    assert size < SUMMARY_MAX_BYTES, f"{detector.key} summary of 50,000 texts is {size:,} bytes"


@pytest.fixture(scope="module")
def bulky_reference(large_reference: ReferenceData) -> ReferenceData:
    """50,000 texts, one in a hundred 10,000 characters of non-ASCII text, and a model vocabulary
    of 300,000 words: what could blow up a sample, a sketch or a vocabulary."""
    long_text = ("ünïcödé wörds " * 800)[:10_000]
    texts = [long_text if i % 100 == 0 else text for i, text in enumerate(large_reference.texts)]
    vocabulary = frozenset(f"term{i}" for i in range(300_000))
    return replace(large_reference, texts=texts, vocabulary=vocabulary)


def test_summary_stays_small_for_long_texts_and_a_large_vocabulary(
    detector: DriftDetector, bulky_reference: ReferenceData
) -> None:
    size = len(json.dumps(detector.fit(bulky_reference)))
    assert size < SUMMARY_MAX_BYTES, f"{detector.key} summary is {size:,} bytes"


def test_same_distribution_windows_are_not_flagged(
    detector: DriftDetector, summaries: dict[str, dict[str, Any]]
) -> None:
    results = [
        detector.check(summaries[detector.key], SAME.window(SAME_WINDOW_SIZE, seed=100 + i))
        for i in range(SAME_WINDOWS)
    ]
    assert all(r.status in ("ok", "drift") for r in results)
    alarms = [r.message for r in results if r.drifted]
    assert len(alarms) <= MAX_FALSE_ALARMS, alarms


def test_a_clear_shift_is_flagged(detector: DriftDetector, summaries: dict[str, dict[str, Any]]) -> None:
    result = detector.check(summaries[detector.key], CLEAR_SHIFTS[detector.key].window(SAME_WINDOW_SIZE, seed=7))
    assert result.drifted, result.message
    assert result.status == "drift"
    assert result.p_value is not None and result.p_value < result.alpha
    assert result.effect_size is not None and result.effect_size >= result.effect_threshold


@pytest.fixture(scope="module")
def huge_trivial_window() -> Window:
    return TRIVIAL_SHIFT.window(HUGE_WINDOW, seed=3)


def test_a_trivial_shift_on_a_huge_window_is_not_drift(
    detector: DriftDetector, large_summaries: dict[str, dict[str, Any]], huge_trivial_window: Window
) -> None:
    result = detector.check(large_summaries[detector.key], huge_trivial_window)
    assert not result.drifted, result.message
    assert result.status == "ok"
    assert result.p_value is not None and result.effect_size is not None
    assert result.effect_size < result.effect_threshold
    if detector.key not in BOUNDED_SAMPLE:
        # the test sees the change; only the effect-size rule keeps it from alarming
        assert result.p_value < 1e-6, result.message
        assert "significant but small" in result.message


def test_small_windows_and_references_give_insufficient_data(
    detector: DriftDetector, summaries: dict[str, dict[str, Any]]
) -> None:
    shifted = CLEAR_SHIFTS[detector.key]
    too_small = detector.check(summaries[detector.key], shifted.window(detector.min_window - 1, seed=5))
    small_summary = detector.fit(SAME.reference(detector.min_reference - 1, seed=6))
    from_small = detector.check(small_summary, shifted.window(SAME_WINDOW_SIZE, seed=5))
    empty = detector.check(summaries[detector.key], shifted.window(0, seed=5))
    from_empty = detector.check(detector.fit(SAME.reference(0, seed=6)), shifted.window(SAME_WINDOW_SIZE, seed=5))
    for result in (too_small, from_small, empty, from_empty):
        assert result.status == "insufficient_data"
        assert not result.drifted
        assert result.p_value is None and result.effect_size is None
        assert str(detector.min_window) in result.message


def test_degenerate_windows_give_a_result(detector: DriftDetector, summaries: dict[str, dict[str, Any]]) -> None:
    """Texts without a word, one text repeated, one-hot probabilities: a result, never a crash."""
    n = SAME_WINDOW_SIZE
    one_hot = np.tile([[0.0, 1.0]], (n, 1))
    for texts in (["!"] * n, [""] * n, ["same words again"] * n):
        result = detector.check(summaries[detector.key], Window(texts, one_hot, LABELS))
        assert result.status in ("ok", "drift", "insufficient_data")
        json.dumps(result.to_dict(), allow_nan=False)


def test_result_to_dict_is_plain_json(detector: DriftDetector, summaries: dict[str, dict[str, Any]]) -> None:
    for window in (SAME.window(SAME_WINDOW_SIZE, seed=8), CLEAR_SHIFTS[detector.key].window(50, seed=8)):
        result = detector.check(summaries[detector.key], window)
        data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
        assert data["detector"] == detector.key
        assert data["status"] in ("ok", "drift", "insufficient_data")
        assert isinstance(data["drifted"], bool) and isinstance(data["detail"], dict)
        assert isinstance(data["message"], str) and data["message"]


def test_fit_and_check_do_not_mutate_their_inputs(
    detector: DriftDetector, summaries: dict[str, dict[str, Any]]
) -> None:
    reference = SAME.reference(1_000, seed=9)
    texts, proba = list(reference.texts), reference.probabilities.copy()
    detector.fit(reference)
    assert list(reference.texts) == texts
    np.testing.assert_array_equal(reference.probabilities, proba)

    summary = summaries[detector.key]
    summary_before = copy.deepcopy(summary)
    window = CLEAR_SHIFTS[detector.key].window(SAME_WINDOW_SIZE, seed=9)
    window_texts, window_proba = list(window.texts), window.probabilities.copy()
    detector.check(summary, window)
    assert summary == summary_before
    assert list(window.texts) == window_texts
    np.testing.assert_array_equal(window.probabilities, window_proba)


def test_check_is_deterministic(detector: DriftDetector, summaries: dict[str, dict[str, Any]]) -> None:
    window = CLEAR_SHIFTS[detector.key].window(SAME_WINDOW_SIZE, seed=10)
    first = detector.check(summaries[detector.key], window)
    assert detector.check(summaries[detector.key], window) == first
    assert detector.fit(SAME.reference(500, seed=4)) == detector.fit(SAME.reference(500, seed=4))


def test_a_summary_of_another_detector_or_format_is_refused(
    detector: DriftDetector, summaries: dict[str, dict[str, Any]]
) -> None:
    window = SAME.window(SAME_WINDOW_SIZE, seed=12)
    other = next(key for key in DETECTOR_KEYS if key != detector.key)
    with pytest.raises(ArtifactError, match=other):
        detector.check(summaries[other], window)
    newer = {**summaries[detector.key], "format_version": 99}
    with pytest.raises(ArtifactError, match="format version"):
        detector.check(newer, window)


# -- real data: Yelp -> IMDB / Amazon through a real model ---------------------------------------


@dataclass(frozen=True)
class RealSetting:
    predictor: TfidfLogRegPredictor
    summaries: dict[str, dict[str, Any]]
    windows: dict[str, Window]


@pytest.fixture(scope="module")
def real() -> RealSetting:
    """A tfidf-logreg model trained on 400 Yelp sentences; reference: 300 other Yelp sentences."""
    rng = np.random.default_rng(0)

    def shuffled(domain: str) -> list[tuple[str, str]]:
        rows = uci_rows(domain)
        return [rows[i] for i in rng.permutation(len(rows))]

    yelp, imdb, amazon = shuffled("yelp"), shuffled("imdb"), shuffled("amazon_cells")
    predictor = get_family("tfidf-logreg").fit(
        [t for t, _ in yelp[:400]], [lab for _, lab in yelp[:400]], label_set=["0", "1"], params={}, seed=0
    )
    assert isinstance(predictor, TfidfLogRegPredictor)

    def window(rows: list[tuple[str, str]]) -> Window:
        texts = [t for t, _ in rows]
        return Window(texts, predictor.predict_proba(texts), predictor.labels)

    golden = window(yelp[400:700])
    reference = ReferenceData(
        golden.texts,
        golden.probabilities,
        golden.labels,
        vocabulary=frozenset(predictor.vectorizer.vocabulary_),
    )
    windows = {"yelp": window(yelp[700:1000]), "imdb": window(imdb[:300]), "amazon_cells": window(amazon[:300])}
    return RealSetting(predictor, fit_all(reference), windows)


def test_real_same_domain_traffic_is_not_flagged(real: RealSetting) -> None:
    results = check_all(real.summaries, real.windows["yelp"], features=real.predictor.vectorizer.transform)
    assert [r.detector for r in results] == list(real.summaries)
    assert not any(r.drifted for r in results), [r.message for r in results if r.drifted]


@pytest.mark.parametrize("domain", ["imdb", "amazon_cells"])
def test_real_domain_shift_is_flagged_by_the_text_detectors(real: RealSetting, domain: str) -> None:
    transform = real.predictor.vectorizer.transform
    results = {r.detector: r for r in check_all(real.summaries, real.windows[domain], features=transform)}
    for key in ("oov", "multivariate"):
        assert results[key].drifted, results[key].message
    assert results["multivariate"].detail["features"] == "model"
    # without the model's feature map the hashed bag of words sees the shift too, and says so
    hashed = get_detector("multivariate").check(real.summaries["multivariate"], real.windows[domain])
    assert hashed.drifted, hashed.message
    assert "hashed" in hashed.detail["features"]


# -- registry ----------------------------------------------------------------------------------


def test_unknown_detector_key_names_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=DETECTOR_KEYS[0]):
        get_detector("no-such-detector")
    with pytest.raises(ValidationError, match="no-such-detector"):
        check_all({"no-such-detector": {}}, SAME.window(10, seed=0))


def test_custom_thresholds_are_used_by_check_all(summaries: dict[str, dict[str, Any]]) -> None:
    strict = {"prediction": drift.PredictionDriftDetector(effect_threshold=0.5)}
    window = CLEAR_SHIFTS["prediction"].window(SAME_WINDOW_SIZE, seed=7)
    (result,) = check_all({"prediction": summaries["prediction"]}, window, detectors=strict)
    assert result.effect_threshold == 0.5 and not result.drifted
    assert isinstance(result, DriftResult)


def test_public_names_are_exported() -> None:
    assert sorted(drift.__all__) == sorted(name for name in drift.__all__ if hasattr(drift, name))
    assert {"DriftDetector", "DriftResult", "ReferenceData", "Window", "check_all", "fit_all"} <= set(drift.__all__)
    for detector in DETECTORS.values():
        assert type(detector).__name__ in drift.__all__


def test_window_refuses_probabilities_of_the_wrong_shape() -> None:
    with pytest.raises(ValidationError, match="shape"):
        Window(["a", "b"], np.full((3, 2), 0.5), LABELS)
    with pytest.raises(ValidationError, match="finite"):
        Window(["a"], np.array([[np.nan, 1.0]]), LABELS)
    window = SAME.window(SAME_WINDOW_SIZE, seed=0)
    with pytest.raises(ValidationError, match="labels"):
        get_detector("prediction").check(
            get_detector("prediction").fit(SAME.reference(200, seed=0)), replace(window, labels=("pos", "neg"))
        )
