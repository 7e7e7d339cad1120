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
* ``answer_size``: the size of an answer whose shift a guardrail watches (None: not watched);
* ``training_feedback``: which feedback events can become training rows (what the volume
  trigger counts);
* ``policy_defaults``: the task's own policy defaults, set when a model of the task is created;
* ``drift_window``: the features of served answers that drift checks compare with a
  version's reference;
* ``train``: the retrain's task-specific steps, run in the training process (curate the
  feedback into a snapshot, fit, evaluate, judge against the champion).

A task is one package under ``learnloop/tasks/`` and one line in ``TASKS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from learnloop.domain import FeedbackEvent, FeedbackInput, FeedbackKind, Model, ModelVersion, Prediction, TrainingCost
from learnloop.drift import Window

# Checks a free text an event carries and returns it as it may be stored (personal data
# scrubbed): ``text_rule(value, field)``; raises ``ValidationError`` naming the field.
TextRule = Callable[[str, str], str]
# How far a retrain in the training process got: ``report(fraction of its work done, message)``.
Report = Callable[[float, str], None]


@dataclass(frozen=True)
class RetrainInputs:
    """What a retrain starts from, read from the database by the pipeline's first step and
    handed to the task's ``train`` in the training process (plain, picklable data)."""

    model: Model
    champion: ModelVersion | None  # None: the first version (``learnloop init``)
    champion_cutoff: datetime | None  # feedback strictly before here was in the champion's snapshot
    cutoff: datetime  # feedback up to here is in this one
    bootstrap: list[tuple[str, str]]  # the model's own training rows
    golden: list[tuple[str, str]]  # its held-out evaluation rows
    feedback: list[FeedbackEvent]  # every event up to ``cutoff``, oldest first, with its answer
    artifact_url: str  # the artifact store, opened in the training process
    artifact_key: str  # where the candidate's artifact goes
    bases_dir: str = ""  # where a generative model's GGUF base is converted (the home's ``bases`` folder)
    study_url: str = ""  # learnloop's database, where a parameter search keeps its Optuna study ("": in memory)
    threads: int = 1  # torch threads of a generative fit (the training process shares the machine)
    golden_metadata: list[dict[str, Any] | None] = field(default_factory=list)  # aligned with golden; [] if none


@dataclass(frozen=True)
class Candidate:
    """What the task's ``train`` made: a stored artifact, the content-addressed snapshot it
    was trained on (already written to the store), its metrics and the gate's verdict."""

    artifact_key: str
    snapshot_hash: str
    snapshot_key: str
    snapshot_counts: dict[str, Any]
    snapshot_cutoff: datetime | None
    metrics: dict[str, Any]
    verdict: dict[str, Any] | None  # None: nothing to judge against (the first version)
    train_seconds: float
    notes: list[str] = field(default_factory=list)  # what the steps said, for the job's progress
    # The family and parameters it was fitted with, where a selection among candidates chose
    # them (None: the model's own).
    family: str | None = None
    params: dict[str, Any] | None = None
    cost: TrainingCost | None = None  # what the fit cost (set where the runner measured it)

    @property
    def passed(self) -> bool:
        return self.verdict is None or bool(self.verdict.get("passed"))


@dataclass(frozen=True)
class TrainingFeedback:
    """The feedback events that can become training rows for a model: what the volume trigger
    counts (``retrain_every``), and how its reason names them."""

    kinds: frozenset[FeedbackKind]
    signals: frozenset[str] = frozenset()  # implicit signals (by name) that count besides ``kinds``
    described: str = "labelled feedback events"


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
    # The task's own policy defaults (flat names), under what a user sets when creating a model.
    policy_defaults: Mapping[str, Any]

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

    def answer_size(self, answer: Mapping[str, Any]) -> float | None:
        """The size of an answer whose shift between two versions a guardrail compares (a
        generated response's length); None where the task has none (the check is skipped)."""
        ...

    def training_feedback(self, model: Model) -> TrainingFeedback:
        """The feedback events that can become training rows for ``model`` (under its policy)."""
        ...

    def drift_window(self, labels: tuple[str, ...], served: Sequence[Prediction]) -> Window:
        """The features of served answers that drift checks compare with a version's reference
        (``labels``: the reference's answer columns)."""
        ...

    def train(self, inputs: RetrainInputs, report: Report) -> Candidate:
        """The retrain's work, in the training process: curate the feedback into a snapshot,
        fit the candidate, score it (and the champion) on data it never trained on, and judge
        it, saying how far it got through ``report``. A module-level function's worth of pure
        compute plus artifact writes; raises ``InsufficientDataError`` when there is too little
        to train on."""
        ...
