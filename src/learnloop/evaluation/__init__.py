"""Metrics and the statistical comparison of versions."""

from learnloop.evaluation.auc import roc_auc
from learnloop.evaluation.bootstrap import (
    bootstrap_ci,
    bootstrap_cis,
    mean_statistic,
    paired_bootstrap_diff_cis,
    two_sample_mean_diff_ci,
)
from learnloop.evaluation.calibration import expected_calibration_error
from learnloop.evaluation.gate import PairedComparison, Verdict, judge, paired_comparison, paired_outcomes
from learnloop.evaluation.generative_gate import JudgeScores, NllScores, PreferenceScores, compare_generators
from learnloop.evaluation.latency import latency_percentiles
from learnloop.evaluation.metrics import (
    classification_metrics,
    macro_f1_statistic,
    paired_metric_differences,
    wilson_interval,
)
from learnloop.evaluation.power import SampleSizePlan, fixed_sample_size, plan_sample_size, sequential_sample_size
from learnloop.evaluation.sequential import DEFAULT_TAU, ArmCounts, SequentialResult, paired, two_sample

__all__ = [
    "DEFAULT_TAU",
    "ArmCounts",
    "JudgeScores",
    "NllScores",
    "PairedComparison",
    "PreferenceScores",
    "SampleSizePlan",
    "SequentialResult",
    "Verdict",
    "bootstrap_ci",
    "bootstrap_cis",
    "classification_metrics",
    "compare_generators",
    "expected_calibration_error",
    "fixed_sample_size",
    "judge",
    "latency_percentiles",
    "macro_f1_statistic",
    "mean_statistic",
    "paired",
    "paired_bootstrap_diff_cis",
    "paired_comparison",
    "paired_metric_differences",
    "paired_outcomes",
    "plan_sample_size",
    "roc_auc",
    "sequential_sample_size",
    "two_sample",
    "two_sample_mean_diff_ci",
    "wilson_interval",
]
