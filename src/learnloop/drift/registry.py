"""The registry of drift detectors by stable key, and the two calls that run them all.

A new detector is one file and one line in ``DETECTORS``; the conformance suite
(``tests/conformance/test_drift_detectors.py``) runs it through the same checks as the others."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from learnloop.drift.base import DriftDetector, DriftResult, FeatureMap, ReferenceData, Window
from learnloop.drift.confidence import ConfidenceDriftDetector
from learnloop.drift.multivariate import DomainClassifierDriftDetector
from learnloop.drift.oov import OovDriftDetector
from learnloop.drift.prediction import PredictionDriftDetector
from learnloop.drift.refusal import RefusalDriftDetector
from learnloop.drift.response_length import ResponseLengthDriftDetector
from learnloop.drift.text_length import TextLengthDriftDetector
from learnloop.errors import ValidationError

DETECTORS: dict[str, DriftDetector] = {
    "prediction": PredictionDriftDetector(),
    "confidence": ConfidenceDriftDetector(),
    "text_length": TextLengthDriftDetector(),
    "oov": OovDriftDetector(),
    "multivariate": DomainClassifierDriftDetector(),
    "response_length": ResponseLengthDriftDetector(),
    "refusal": RefusalDriftDetector(),
}
"""Each detector with its default thresholds, under its key."""

RESPONSE_DETECTORS = frozenset({"response_length", "refusal"})
"""Detectors of text answers (``ReferenceData.responses``): ``fit_all`` leaves them out of a
reference without text answers (a classifier's), so its checks do not list them."""


def get_detector(key: str) -> DriftDetector:
    try:
        return DETECTORS[key]
    except KeyError:
        raise ValidationError(
            f"unknown drift detector {key!r}; known: {', '.join(sorted(DETECTORS))}", field="detector"
        ) from None


def default_detectors() -> list[DriftDetector]:
    return list(DETECTORS.values())


def fit_all(
    reference: ReferenceData, detectors: Mapping[str, DriftDetector] | None = None
) -> dict[str, dict[str, Any]]:
    """Every detector's summary of ``reference``, by key (what a version stores); the detectors
    of text answers only when the reference has them (``RESPONSE_DETECTORS``)."""
    chosen = DETECTORS if detectors is None else detectors
    return {
        key: detector.fit(reference)
        for key, detector in chosen.items()
        if reference.responses is not None or key not in RESPONSE_DETECTORS
    }


def check_all(
    summaries: Mapping[str, Mapping[str, Any]],
    window: Window,
    features: FeatureMap | None = None,
    detectors: Mapping[str, DriftDetector] | None = None,
) -> list[DriftResult]:
    """Check ``window`` against each summary with the detector of the summary's key."""
    chosen = DETECTORS if detectors is None else detectors
    results = []
    for key, summary in summaries.items():
        if key not in chosen:
            raise ValidationError(
                f"no drift detector for summary {key!r}; known: {', '.join(sorted(chosen))}", field="summaries"
            )
        results.append(chosen[key].check(summary, window, features=features))
    return results
