"""What the client's calls return: typed, read-only views of the server's JSON answers.

Each mirrors a response schema of the HTTP API (``learnloop.api``), named without the
``Public`` suffix: ``Prediction`` is ``PredictionPublic``. They are the client's own rather
than the server's classes because importing those loads the server (the task plug-ins and
numpy for ``api.schemas``, SQLAlchemy and the feedback services for the generation and ``ask``
schemas); ``tests/e2e/test_client_http.py`` checks every field here against the server's
OpenAPI document, so the two cannot drift apart. Fields the server adds later are ignored,
so an older client keeps working against a newer server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Prediction(_Result):
    """A classifier's answer (``PredictionPublic``); feedback on it names ``prediction_id``."""

    prediction_id: str
    model: str
    version: int
    label: str
    probabilities: dict[str, float]
    route: str = Field(
        default="champion", description="champion, canary, baseline or fallback: which version answered and why."
    )


class Feedback(_Result):
    """A stored feedback event (``FeedbackPublic``): ``feedback_id`` is the server's id,
    ``client_feedback_id`` the idempotency key the client sent."""

    feedback_id: str
    client_feedback_id: str | None
    model: str
    kind: str
    prediction_id: str | None
    label: str | None
    thumbs: str | None
    rating: int | None
    text: str | None
    correction: str | None = None
    chosen_prediction_id: str | None = None
    rejected_prediction_id: str | None = None
    prompt: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    strength: float | None = None
    signal: str | None = None
    value: bool | float | None = None
    metadata: dict[str, Any] | None
    created_at: datetime


class FeedbackRetracted(_Result):
    """A feedback event taken back (``FeedbackRetracted``): the event as it was stored, and the
    training snapshots taken since, which may hold it."""

    feedback: Feedback
    in_snapshots: list[str]


class ItemError(_Result):
    """Why one item of a batch was rejected (a problem's ``code``, ``field`` and ``detail``)."""

    code: str
    field: str | None
    detail: str


class FeedbackItemResult(_Result):
    """One item of a feedback batch, by its ``index``: stored (a retried item names the first
    event) or rejected with its ``error``."""

    index: int
    status: Literal["stored", "rejected"]
    feedback_id: str | None = None
    client_feedback_id: str | None = None
    kind: str | None = None
    error: ItemError | None = None


class FeedbackBatchResult(_Result):
    stored: int
    rejected: int
    items: list[FeedbackItemResult]


class AskItem(_Result):
    """An answer worth a label (``AskItemPublic``): send feedback with its ``prediction_id``."""

    prediction_id: str
    text: str
    label: str
    probabilities: dict[str, float]
    score: float
    margin: float
    entropy: float
    reason: str
    created_at: datetime


class AskResult(_Result):
    """The champion's newest unlabelled answers most worth a label, most uncertain first (``AskPublic``)."""

    model: str
    version: int | None
    strategy: str
    window: int
    considered: int
    items: list[AskItem]


class VersionSummary(_Result):
    version: int
    status: str
    status_reason: str | None
    created_at: datetime
    golden_accuracy: float | None
    recent_accuracy: float | None
    parent_version: int | None
    # What the retention policy did to it (null: nothing; a server before them sends neither).
    artifacts_pruned_at: datetime | None = None  # its artifact removed: it cannot be served again
    caches_dropped_at: datetime | None = None  # its re-creatable caches dropped: it still loads
    status_changed_at: datetime | None = None  # when it took its status (retention's age counts from it)


class Deployment(_Result):
    """Which version serves (``DeploymentPublic``)."""

    model: str
    champion_version: int | None
    previous_version: int | None
    revision: int
    updated_at: datetime


class Rollout(_Result):
    """A running or paused rollout of a challenger (the main fields of ``RolloutPublic``)."""

    id: int
    version: int
    baseline_version: int
    strategy: str
    status: str
    share: float
    steps: list[float]
    step: int
    started_at: datetime


class Job(_Result):
    """A background job, e.g. the last retrain (the main fields of ``JobPublic``)."""

    job_id: str
    model: str
    kind: str
    status: str
    progress: float
    message: str | None
    error: str | None
    result: dict[str, Any] | None
    created_at: datetime
    finished_at: datetime | None


class JobAccepted(_Result):
    job_id: str
    status: str


class ModelStatus(_Result):
    """A model at a glance (``ModelDetail``): champion, versions, rollout, feedback counts,
    policy and the last retrain."""

    name: str
    task: str
    labels: list[str]
    family: str
    champion_version: int | None
    policy: dict[str, Any]
    deployment: Deployment
    rollout: Rollout | None = None
    versions: list[VersionSummary]
    feedback_counts: dict[str, int]
    last_retrain: Job | None
    created_at: datetime


class Generation(_Result):
    """A generative model's answer (``GeneratePublic``); feedback on it names ``prediction_id``."""

    prediction_id: str
    model: str
    version: int
    route: str
    text: str
    finish_reason: str = Field(description="stop (the model ended), length (max_new_tokens), cancelled")
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float


class LoggedGeneration(_Result):
    """An answer made elsewhere, logged (``GenerationLogged``); feedback names ``prediction_id``."""

    prediction_id: str
    model: str
    version: int
    route: str
