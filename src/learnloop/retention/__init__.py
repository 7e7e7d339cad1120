"""Retention of versions' artifacts: which a model's policy prunes (``selection``, pure) and
applying it (``service``): ``learnloop gc``, and the worker after each retrain and hourly."""

from learnloop.retention.selection import Pruning, protected_versions, select_pruning
from learnloop.retention.service import PrunedVersion, RetentionReport, RetentionService

__all__ = ["PrunedVersion", "Pruning", "RetentionReport", "RetentionService", "protected_versions", "select_pruning"]
