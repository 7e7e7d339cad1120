"""The classification task: its answers, how its feedback becomes labelled examples and
snapshots, its online outcome rule, active learning and exports."""

from learnloop.tasks.classification.answers import ClassAnswer, answer_label, predicted_label
from learnloop.tasks.classification.labels import LabelledExample, derive_examples, implied_label
from learnloop.tasks.classification.noise import NoiseFlag, find_label_issues, out_of_sample_probabilities
from learnloop.tasks.classification.outcomes import LabelOutcomes, answer_correct, latest_per_prediction
from learnloop.tasks.classification.snapshot import Snapshot, build_snapshot, content_hash
from learnloop.tasks.classification.task import ClassificationTask

__all__ = [
    "ClassAnswer",
    "ClassificationTask",
    "LabelOutcomes",
    "LabelledExample",
    "NoiseFlag",
    "Snapshot",
    "answer_correct",
    "answer_label",
    "build_snapshot",
    "content_hash",
    "derive_examples",
    "find_label_issues",
    "implied_label",
    "latest_per_prediction",
    "out_of_sample_probabilities",
    "predicted_label",
]
