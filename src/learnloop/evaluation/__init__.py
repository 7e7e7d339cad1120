"""Metrics and the statistical comparison of versions."""

from learnloop.evaluation.gate import PairedComparison, Verdict, judge, paired_comparison
from learnloop.evaluation.metrics import classification_metrics, wilson_interval

__all__ = [
    "PairedComparison",
    "Verdict",
    "classification_metrics",
    "judge",
    "paired_comparison",
    "wilson_interval",
]
