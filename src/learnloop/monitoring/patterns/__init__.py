"""Error patterns: where a model's answers keep being corrected (clusters of corrected texts,
slices with an excess of errors), and an ``error_pattern`` event when one is new."""

from learnloop.monitoring.patterns.analysis import Analysis, ErrorPattern, Example, Progress, analyse
from learnloop.monitoring.patterns.judged import Judged, judged_answers
from learnloop.monitoring.patterns.service import (
    CHECK_SECONDS,
    KIND,
    WINDOW,
    ErrorPatternService,
    ModelPatterns,
    Reported,
)
from learnloop.monitoring.patterns.slices import ErrorSlice, Excess

__all__ = [
    "CHECK_SECONDS",
    "KIND",
    "WINDOW",
    "Analysis",
    "ErrorPattern",
    "ErrorPatternService",
    "ErrorSlice",
    "Example",
    "Excess",
    "Judged",
    "ModelPatterns",
    "Progress",
    "Reported",
    "analyse",
    "judged_answers",
]
