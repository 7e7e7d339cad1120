"""Drift of the out-of-vocabulary rate: the share of a text's words the model does not know.

The vocabulary is the model's own (its vectorizer's unigrams) when ``ReferenceData.vocabulary``
is given, and the reference texts are then held out from the model's training. Without one it is
built from a random half of the reference texts and the baseline rate measured on the other half,
so the baseline is what fresh text from the same source shows (a vocabulary checked against the
texts it was built from would know every word). The vocabulary travels in the summary as a Bloom
filter of at most 2**19 bits (64 KiB): about 1% false positives up to ~50,000 words, more above
(a false positive counts an unknown word as known; both sides' rates are divided by
``1 - false_positive_rate``, which undoes that on average, and the rate is in the detail).

Test: Welch's one-sided t-test that the mean per-text OOV share is higher in the window than in
the reference (per text, not per token: the words of one text are not independent, and a
per-token test would alarm on any topical window). A lower rate is never drift. Effect: the
increase of the mean per-text OOV share, threshold 0.05 (five more words in a hundred unknown).
Texts without a single word (emoji, "!") are left out of both sides.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from learnloop.drift.base import (
    DriftResult,
    FeatureMap,
    ReferenceData,
    Thresholds,
    Window,
    decide,
    insufficient,
    read_summary,
    summary_header,
)
from learnloop.drift.stats import BloomFilter, FloatArray, tokenize

WHAT = "out-of-vocabulary rate"
MAX_LOG2_BITS = 19
MAX_WINDOW_TEXTS = 20_000
"""A larger window is checked on a uniform random sample of this many texts: tokenizing is the
one cost that grows with the window, and 20,000 texts already resolve a 0.2-point rate change."""
TOP_TOKENS = 10
TOP_TOKEN_MIN_TEXTS = 5
"""An unknown word is named in the detail only if at least this many window texts use it (a
word one user typed once may be a name)."""


class OovRates:
    """Per-text OOV shares of the texts that have words, and the unknown words' text counts."""

    def __init__(self, texts: Sequence[str], bloom: BloomFilter) -> None:
        token_lists = [tokenize(text) for text in texts]
        sizes = np.fromiter(map(len, token_lists), dtype=np.intp, count=len(token_lists))
        flat = [token for tokens in token_lists for token in tokens]
        unique = list(dict.fromkeys(flat))
        position = {token: i for i, token in enumerate(unique)}
        ids = np.fromiter(map(position.__getitem__, flat), dtype=np.intp, count=len(flat))
        unknown = ~bloom.contains_many(unique)
        owners = np.repeat(np.arange(len(token_lists)), sizes)
        flat_unknown = unknown[ids] if ids.size else np.zeros(0, dtype=bool)
        per_text = np.bincount(owners, weights=flat_unknown.astype(np.float64), minlength=len(token_lists))
        has_words = sizes > 0
        self.rates: FloatArray = per_text[has_words] / sizes[has_words]
        self.texts_without_words = int((~has_words).sum())
        self.token_rate = float(flat_unknown.mean()) if flat_unknown.size else 0.0
        # in how many texts each unknown word appears
        pairs = np.unique(owners[flat_unknown] * max(len(unique), 1) + ids[flat_unknown])
        text_counts = np.bincount(pairs % max(len(unique), 1), minlength=len(unique))
        order = np.argsort(-text_counts, kind="stable")[:TOP_TOKENS]
        self.top_unknown = [
            {"token": unique[i], "texts": int(text_counts[i])} for i in order if text_counts[i] >= TOP_TOKEN_MIN_TEXTS
        ]


def _vocabulary(reference: ReferenceData, seed: int) -> tuple[list[str], Sequence[str], str]:
    """Words of the vocabulary, the texts that measure the baseline rate, and where the words came from."""
    if reference.vocabulary is not None:
        words = sorted(w for w in reference.vocabulary if " " not in w.strip())
        return words, reference.texts, "model"
    order = np.random.default_rng(seed).permutation(len(reference.texts))
    half = len(order) // 2
    words = sorted({word for i in order[:half] for word in tokenize(reference.texts[i])})
    return words, [reference.texts[i] for i in order[half:]], "reference texts (half; baseline on the other half)"


class OovDriftDetector(Thresholds):
    key = "oov"
    description = "Out-of-vocabulary rate per text: Welch's one-sided t-test; effect = increase of the mean rate"
    test = "welch-t"
    effect = "oov_rate_increase"

    default_effect = 0.05

    def fit(self, reference: ReferenceData) -> dict[str, Any]:
        words, baseline_texts, source = _vocabulary(reference, self.seed)
        bloom = BloomFilter.sized_for(len(words), MAX_LOG2_BITS)
        bloom.add_many(words)
        baseline = OovRates(baseline_texts, bloom)
        return {
            **summary_header(self.key, baseline.rates.size),
            "vocabulary_source": source,
            "vocabulary_size": len(words),
            "bloom": bloom.to_dict(),
            "mean": float(baseline.rates.mean()) if baseline.rates.size else 0.0,
            "std": float(baseline.rates.std(ddof=1)) if baseline.rates.size > 1 else 0.0,
            "token_rate": baseline.token_rate,
        }

    def check(self, summary: Mapping[str, Any], window: Window, *, features: FeatureMap | None = None) -> DriftResult:
        n_reference = read_summary(summary, self.key)
        bloom = BloomFilter.from_dict(summary["bloom"])
        early = insufficient(
            self, test=self.test, effect=self.effect, n_reference=n_reference, n_window=len(window), what=WHAT
        )
        if early is not None:
            return early
        texts = window.texts
        if len(texts) > MAX_WINDOW_TEXTS:
            picked = np.random.default_rng(self.seed).choice(len(texts), MAX_WINDOW_TEXTS, replace=False)
            texts = [texts[i] for i in np.sort(picked)]
        window_rates = OovRates(texts, bloom)
        n = int(window_rates.rates.size)
        early = insufficient(
            self,
            test=self.test,
            effect=self.effect,
            n_reference=n_reference,
            n_window=n,
            what=WHAT + " (texts with words)",
        )
        if early is not None:
            return early
        # an unknown word passes as known with the filter's false-positive rate: scale it back
        scale = 1.0 / (1.0 - min(bloom.false_positive_rate, 0.5))
        mean, std = scale * float(window_rates.rates.mean()), scale * float(window_rates.rates.std(ddof=1))
        ref_mean, ref_std = scale * float(summary["mean"]), scale * float(summary["std"])
        t, p_value = welch_greater(mean, std, n, ref_mean, ref_std, n_reference)
        detail = {
            "vocabulary_source": summary["vocabulary_source"],
            "vocabulary_size": summary["vocabulary_size"],
            "bloom_false_positive_rate": bloom.false_positive_rate,
            "bloom_correction": scale,
            "reference_rate": ref_mean,
            "window_rate": mean,
            "reference_token_rate": scale * float(summary["token_rate"]),
            "window_token_rate": scale * window_rates.token_rate,
            "texts_checked": len(texts),
            "texts_with_words_checked": n,
            "texts_without_words": window_rates.texts_without_words,
            "top_unknown_words": window_rates.top_unknown,
        }
        return decide(
            self,
            test=self.test,
            statistic=t,
            p_value=p_value,
            effect=self.effect,
            effect_size=mean - ref_mean,
            n_reference=n_reference,
            n_window=len(window),
            what=WHAT,
            detail=detail,
        )


def welch_greater(mean: float, std: float, n: int, ref_mean: float, ref_std: float, n_ref: int) -> tuple[float, float]:
    """Welch's t-test that ``mean`` exceeds ``ref_mean``; with no spread on either side, the means decide."""
    if std == 0.0 and ref_std == 0.0:
        return (math.inf, 0.0) if mean > ref_mean else (0.0, 1.0)
    from scipy import stats as scipy_stats

    result = scipy_stats.ttest_ind_from_stats(
        mean, std, n, ref_mean, ref_std, n_ref, equal_var=False, alternative="greater"
    )
    return float(result.statistic), float(result.pvalue)
