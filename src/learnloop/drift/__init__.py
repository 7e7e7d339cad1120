"""Drift of a model's inputs and outputs against a reference summarised when the version is trained.

Pure statistics, beside ``evaluation``: one detector per file, their registry (``DETECTORS``),
and a version's reference (``drift.reference``, fitted by the task in the training process).
Checking the serving version on its newest answers is a service (``monitoring.service``)."""

from learnloop.drift.base import (
    DriftDetector,
    DriftResult,
    FeatureMap,
    ReferenceData,
    Status,
    Window,
)
from learnloop.drift.confidence import ConfidenceDriftDetector
from learnloop.drift.multivariate import DomainClassifierDriftDetector
from learnloop.drift.oov import OovDriftDetector
from learnloop.drift.prediction import PredictionDriftDetector
from learnloop.drift.refusal import RefusalDriftDetector, is_refusal
from learnloop.drift.registry import (
    DETECTORS,
    RESPONSE_DETECTORS,
    check_all,
    default_detectors,
    fit_all,
    get_detector,
)
from learnloop.drift.response_length import ResponseLengthDriftDetector
from learnloop.drift.text_length import TextLengthDriftDetector

__all__ = [
    "DETECTORS",
    "RESPONSE_DETECTORS",
    "ConfidenceDriftDetector",
    "DomainClassifierDriftDetector",
    "DriftDetector",
    "DriftResult",
    "FeatureMap",
    "OovDriftDetector",
    "PredictionDriftDetector",
    "ReferenceData",
    "RefusalDriftDetector",
    "ResponseLengthDriftDetector",
    "Status",
    "TextLengthDriftDetector",
    "Window",
    "check_all",
    "default_detectors",
    "fit_all",
    "get_detector",
    "is_refusal",
]
