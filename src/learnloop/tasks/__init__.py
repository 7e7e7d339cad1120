"""Tasks: what a model does and what "good" means, one package each, registered by stable key."""

from learnloop.domain import DEFAULT_TASK
from learnloop.errors import ValidationError
from learnloop.tasks.base import Candidate, OutcomeRule, Report, RetrainInputs, Task, TextRule, TrainingFeedback
from learnloop.tasks.classification import ClassificationTask
from learnloop.tasks.generation import GenerationTask

TASKS: dict[str, Task] = {
    ClassificationTask.key: ClassificationTask(),
    GenerationTask.key: GenerationTask(),
}


def get_task(key: str) -> Task:
    try:
        return TASKS[key]
    except KeyError:
        raise ValidationError(f"unknown task {key!r}; known: {', '.join(sorted(TASKS))}", field="task") from None


def train(inputs: RetrainInputs, report: Report) -> Candidate:
    """The model's task's ``train``: what the training runner runs (a module-level function)."""
    return get_task(inputs.model.task).train(inputs, report)


__all__ = [
    "DEFAULT_TASK",
    "TASKS",
    "Candidate",
    "OutcomeRule",
    "Report",
    "RetrainInputs",
    "Task",
    "TextRule",
    "TrainingFeedback",
    "get_task",
    "train",
]
