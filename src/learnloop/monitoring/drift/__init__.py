"""Drift of a model's inputs and outputs against a reference summarised when the version is trained."""

from learnloop.monitoring.drift.base import (
    DriftDetector,
    DriftResult,
    FeatureMap,
    ReferenceData,
    Status,
    Window,
)
from learnloop.monitoring.drift.confidence import ConfidenceDriftDetector
from learnloop.monitoring.drift.multivariate import DomainClassifierDriftDetector
from learnloop.monitoring.drift.oov import OovDriftDetector
from learnloop.monitoring.drift.prediction import PredictionDriftDetector
from learnloop.monitoring.drift.registry import DETECTORS, check_all, default_detectors, fit_all, get_detector
from learnloop.monitoring.drift.text_length import TextLengthDriftDetector

__all__ = [
    "DETECTORS",
    "ConfidenceDriftDetector",
    "DomainClassifierDriftDetector",
    "DriftDetector",
    "DriftResult",
    "FeatureMap",
    "OovDriftDetector",
    "PredictionDriftDetector",
    "ReferenceData",
    "Status",
    "TextLengthDriftDetector",
    "Window",
    "check_all",
    "default_detectors",
    "fit_all",
    "get_detector",
]
