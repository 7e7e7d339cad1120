"""The ``Task`` protocol: what a model does and what "good" means.

A task is the plug-in beside the model family (``learnloop.families``): the family says how a
model learns, the task what it answers and how feedback on those answers is read. The loop's
machinery (intake, the curation pipeline, snapshots, the training runner, the gate's
statistics, registry, routing, rollouts, monitoring, notifications) never looks inside an
answer or a feedback payload; it asks the model's task:

* ``feedback_payload``: which feedback kinds it accepts and what a valid event of each says
  (the payload stored with the event);
* ``outcomes``: the online rule "was this answer good?" (rollouts, online accuracy);
* ``answer_category``: the category of an answer whose mix a guardrail watches;
* ``pipeline``: the retrain's task-specific steps (curate the feedback into a snapshot, fit
  and score in the training process, evaluate and judge against the champion);
* ``drift_window``: the features of recent answers that drift checks compare with a
  version's reference.

A task is one package under ``learnloop/tasks/`` and one line in ``TASKS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from learnloop.domain import FeedbackEvent, FeedbackInput, FeedbackKind, Model

# Checks a free text an event carries and returns it as it may be stored (personal data
# scrubbed): ``text_rule(value, field)``; raises ``ValidationError`` naming the field.
TextRule = Callable[[str, str], str]


class OutcomeRule(Protocol):
    """Was an answer good, by the feedback on it? The evidence of a rollout's live test and of
    online accuracy."""

    def deciding(self, events: Iterable[FeedbackEvent]) -> list[FeedbackEvent]:
        """The event that decides each prediction's outcome (events oldest first)."""
        ...

    def outcome(self, event: FeedbackEvent, answer: Mapping[str, Any] | None = None) -> bool | None:
        """Was ``answer`` (default: the served one) good by ``event``? None: the event does not say."""
        ...


class Task(Protocol):
    key: str  # stable, persisted with every model
    feedback_kinds: frozenset[FeedbackKind]  # what feedback the task accepts

    def describe(self, model: Model) -> str:
        """A short name for what the model does ("binary", "multiclass", ...)."""
        ...

    def feedback_payload(
        self, model: Model, kind: FeedbackKind, item: FeedbackInput, text_rule: TextRule
    ) -> dict[str, Any]:
        """What a valid event of ``kind`` says (stored as its payload); ``ValidationError`` with
        the offending field otherwise (a kind the task does not take included). Every free text
        it keeps goes through ``text_rule``."""
        ...

    def outcomes(self, model: Model) -> OutcomeRule: ...

    def answer_category(self, answer: Mapping[str, Any]) -> str:
        """The category whose mix between two versions a guardrail compares."""
        ...
