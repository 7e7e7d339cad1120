"""Multivariate drift on the model's own features: a domain-classifier test.

The summary keeps a random sample of at most 500 reference texts (cut to 1,000 characters, and
at most ~100,000 characters of JSON in all). A check takes a random sample of at most 1,000
window texts, cut the same way, and maps both sides through the model's feature map (or, with
none, a hashed bag of words, which works with any family; the detail says which). This is a
classifier two-sample test (Lopez-Paz and Oquab, 2017): a logistic regression learns to tell
window from reference on a random stratified half of the rows and scores the other half. The
statistic is the AUC on that held-out half; the p-value is the one-sided Mann-Whitney test on the
same scores (AUC = U / (n1 n2), normal approximation), which is valid because the scored rows
took no part in training. (Pooled out-of-fold scores of a k-fold cross-validation come from k
different models; the Mann-Whitney test on them was measured to alarm in 15% of same-distribution
windows at alpha 0.05.) Effect: AUC - 0.5, threshold 0.10 (an AUC of 0.6, below which a
discriminator is conventionally "no better than chance"). The samples bound the time a check
takes; they also bound its power, so a huge window cannot make a trivial difference significant.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
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

WHAT = "feature distribution (domain classifier)"
MAX_REFERENCE_SAMPLE = 500
MAX_WINDOW_SAMPLE = 1_000
MAX_TEXT_CHARS = 1_000
MAX_SAMPLE_JSON_CHARS = 100_000


def truncate(text: str) -> str:
    return text[:MAX_TEXT_CHARS]


def hashed_bag_of_words(texts: Sequence[str]) -> Any:
    """The fallback feature map: L2-normalised word counts hashed into 2**18 columns."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=2**18, alternate_sign=False, norm="l2").transform(texts)


def sample_texts(texts: Sequence[str], size: int, rng: np.random.Generator) -> list[str]:
    """A uniform random sample (in random order) of at most ``size`` texts, each truncated."""
    picked = rng.permutation(len(texts))[:size] if len(texts) > size else rng.permutation(len(texts))
    return [truncate(texts[i]) for i in picked]


class DomainClassifierDriftDetector(Thresholds):
    key = "multivariate"
    description = "Model features: domain-classifier test (cross-validated AUC, Mann-Whitney); effect = AUC - 0.5"
    test = "domain-classifier-auc"
    effect = "auc_minus_half"

    def fit(self, reference: ReferenceData) -> dict[str, Any]:
        sample: list[str] = []
        used = 0
        for text in sample_texts(reference.texts, MAX_REFERENCE_SAMPLE, np.random.default_rng(self.seed)):
            if used >= MAX_SAMPLE_JSON_CHARS:
                break  # the text that crossed the budget stays in, so no text is dropped for its length
            sample.append(text)
            used += len(json.dumps(text))
        return {**summary_header(self.key, len(reference.texts)), "sample": sample}

    def check(self, summary: Mapping[str, Any], window: Window, *, features: FeatureMap | None = None) -> DriftResult:
        n_reference = read_summary(summary, self.key)
        reference_sample = list(summary["sample"])
        early = insufficient(
            self,
            test=self.test,
            effect=self.effect,
            n_reference=min(n_reference, len(reference_sample)),
            n_window=len(window),
            what=WHAT,
        )
        if early is not None:
            return early
        window_sample = sample_texts(window.texts, MAX_WINDOW_SAMPLE, np.random.default_rng(self.seed + 1))
        found = domain_classifier_test(reference_sample, window_sample, seed=self.seed, features=features)
        detail = {
            "auc": found.auc,
            "features": found.features,
            "reference_sample": len(reference_sample),
            "window_sample": len(window_sample),
            "scored": {"reference": found.scored_reference, "window": found.scored_window},
            "max_text_chars": MAX_TEXT_CHARS,
        }
        return decide(
            self,
            test=self.test,
            statistic=found.auc,
            p_value=found.p_value,
            effect=self.effect,
            effect_size=found.auc - 0.5,
            n_reference=n_reference,
            n_window=len(window),
            what=WHAT,
            detail=detail,
        )


@dataclass(frozen=True)
class TwoSample:
    """A classifier two-sample test's outcome: the held-out AUC of telling window from
    reference, its one-sided Mann-Whitney p-value, and how many rows of each side were scored."""

    auc: float
    p_value: float
    scored_reference: int
    scored_window: int
    features: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def domain_classifier_test(
    reference: Sequence[str], window: Sequence[str], *, seed: int = 0, features: FeatureMap | None = None
) -> TwoSample:
    """Do ``window``'s texts come from another distribution than ``reference``'s? A logistic
    regression learns to tell them apart on a random stratified half and scores the other half
    (the module doc); each side needs at least 2 texts. The caller bounds the samples."""
    from scipy import stats as scipy_stats
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    feature_map = features if features is not None else hashed_bag_of_words
    x = _stack(feature_map(list(reference)), feature_map(list(window)))
    y = np.r_[np.zeros(len(reference), dtype=np.intp), np.ones(len(window), dtype=np.intp)]
    train, test = train_test_split(np.arange(len(y)), test_size=0.5, stratify=y, random_state=seed, shuffle=True)
    classifier = LogisticRegression(C=1.0, solver="liblinear", class_weight="balanced")
    classifier.fit(x[train], y[train])
    scores = np.asarray(classifier.decision_function(x[test]), dtype=np.float64)
    held_out = y[test]
    n_window, n_reference = int(held_out.sum()), int((held_out == 0).sum())
    u, p_value = scipy_stats.mannwhitneyu(
        scores[held_out == 1], scores[held_out == 0], alternative="greater", method="asymptotic"
    )
    return TwoSample(
        auc=float(u) / (n_window * n_reference),
        p_value=float(p_value),
        scored_reference=n_reference,
        scored_window=n_window,
        features="model" if features is not None else "hashed bag of words (no model feature map given)",
    )


def _stack(reference: Any, window: Any) -> Any:
    """Both sides in one matrix, without the columns neither uses (a wide hashed or TF-IDF space
    would otherwise cost the solver time in proportion to its width)."""
    from scipy import sparse

    if sparse.issparse(reference) or sparse.issparse(window):
        stacked = sparse.vstack([sparse.csr_matrix(reference), sparse.csr_matrix(window)]).tocsc()
        return stacked[:, np.flatnonzero(stacked.getnnz(axis=0))].tocsr()
    return np.vstack([np.asarray(reference, dtype=np.float64), np.asarray(window, dtype=np.float64)])
