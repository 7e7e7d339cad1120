"""Tasks: what a model does and what "good" means, one package each, registered by stable key."""

from learnloop.errors import ValidationError
from learnloop.tasks.base import OutcomeRule, Task, TextRule
from learnloop.tasks.classification import ClassificationTask

TASKS: dict[str, Task] = {
    ClassificationTask.key: ClassificationTask(),
}
DEFAULT_TASK = ClassificationTask.key


def get_task(key: str) -> Task:
    try:
        return TASKS[key]
    except KeyError:
        raise ValidationError(f"unknown task {key!r}; known: {', '.join(sorted(TASKS))}", field="task") from None


__all__ = ["DEFAULT_TASK", "TASKS", "OutcomeRule", "Task", "TextRule", "get_task"]
