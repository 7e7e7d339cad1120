"""Why a model answered what it did: one answer's terms, a version's weights, two versions' changes."""

from learnloop.explanations.service import ExplainedAnswer, ExplanationService, VersionWeights, WeightsDiff

__all__ = ["ExplainedAnswer", "ExplanationService", "VersionWeights", "WeightsDiff"]
