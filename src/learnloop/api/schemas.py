"""Request and response schemas of the HTTP API (``XCreate`` in, ``XPublic`` out)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from learnloop.domain import Deployment, DriftCheck, Event, Feedback, FeedbackKind, Job, Model, ModelVersion, Rollout
from learnloop.feedback.service import Retraction
from learnloop.policy import FIELD_NAMES
from learnloop.tasks import get_task
from learnloop.training.studies import StudySummary, StudyView

# The integer range of an id or version column (``Integer``: 32 bits on PostgreSQL, whatever
# SQLite holds): a larger one is a 422, never a 500 (PostgreSQL: "integer out of range"; the
# 64-bit bound this replaced let 2**31..2**63 through, found by tests/e2e/test_fuzz_http.py).
DB_INT_MIN, DB_INT_MAX = -(2**31), 2**31 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(_Strict):
    text: str = Field(min_length=1, description="The text to classify.")
    subject: str | None = Field(default=None, max_length=256, description="Optional user id (stored hashed).")
    metadata: dict[str, str | int | float | bool | None] | None = Field(
        default=None,
        description="Optional attributes of the request (a region, a language): flat, at most 32 keys of at most "
        "64 characters and 4,096 bytes of JSON. Stored with the answer for fairness reports (policy fairness_fields) "
        "and slices; never used as a feature.",
        examples=[{"region": "emea"}],
    )


class PredictBatchRequest(_Strict):
    items: list[PredictRequest] = Field(min_length=1)


class PredictionPublic(BaseModel):
    prediction_id: str
    model: str
    version: int
    label: str
    probabilities: dict[str, float]
    route: str = Field(
        default="champion",
        description="champion; canary (the challenger of a canary or A/B test); baseline (arm A of an A/B test "
        "whose baseline is not the champion); fallback (the challenger failed, the champion answered)",
    )


class PredictBatchResponse(BaseModel):
    items: list[PredictionPublic]


class FeedbackBatchCreate(_Strict):
    items: list[dict[str, Any]] = Field(min_length=1, description="Feedback events, each as in POST /feedback.")


class FeedbackPublic(BaseModel):
    feedback_id: str
    client_feedback_id: str | None
    model: str
    kind: str
    prediction_id: str | None
    label: str | None
    thumbs: str | None
    rating: int | None
    text: str | None
    correction: str | None = Field(default=None, description="correction: what the answer should have been.")
    chosen_prediction_id: str | None = Field(default=None, description="preference: the answer preferred ...")
    rejected_prediction_id: str | None = Field(default=None, description="... over this one.")
    prompt: str | None = Field(default=None, description="A standalone preference: the prompt ...")
    chosen: str | None = Field(default=None, description="... the answer preferred ...")
    rejected: str | None = Field(default=None, description="... over this one.")
    strength: float | None = Field(default=None, description="preference: how strongly, 0-1.")
    signal: str | None = Field(default=None, description="implicit: the signal ...")
    value: bool | float | None = Field(default=None, description="... and its value.")
    metadata: dict[str, Any] | None
    created_at: datetime

    @classmethod
    def of(cls, f: Feedback) -> FeedbackPublic:
        said = f.payload
        pair = f.kind == FeedbackKind.PREFERENCE and "rejected_prediction_id" in said
        return cls(
            feedback_id=f.id,
            client_feedback_id=f.client_id,
            model=f.model,
            kind=f.kind.value,
            prediction_id=f.prediction_id,
            label=f.label,
            thumbs=f.thumbs,
            rating=f.rating,
            text=f.text,
            correction=said.get("correction"),
            chosen_prediction_id=f.prediction_id if pair else None,
            rejected_prediction_id=said.get("rejected_prediction_id"),
            prompt=said.get("prompt"),
            chosen=said.get("chosen"),
            rejected=said.get("rejected"),
            strength=said.get("strength"),
            signal=said.get("signal"),
            value=said.get("value"),
            metadata=f.metadata,
            created_at=f.created_at,
        )


class FeedbackRetracted(BaseModel):
    """A feedback event taken back: it counts nowhere from now on."""

    feedback: FeedbackPublic = Field(description="The event as it was stored.")
    in_snapshots: list[str] = Field(
        description="Training snapshots taken since it was given, which may hold it: versions trained on them "
        "keep what they learned (a snapshot is never edited)."
    )

    @classmethod
    def of(cls, retraction: Retraction) -> FeedbackRetracted:
        return cls(feedback=FeedbackPublic.of(retraction.feedback), in_snapshots=list(retraction.in_snapshots))


class ItemError(BaseModel):
    code: str
    field: str | None
    detail: str


class FeedbackItemResult(BaseModel):
    """One item of a batch: stored (with its ids; a retry names the first event) or rejected."""

    index: int
    status: Literal["stored", "rejected"]
    feedback_id: str | None = None
    client_feedback_id: str | None = None
    kind: str | None = None
    error: ItemError | None = None


class FeedbackBatchResult(BaseModel):
    stored: int
    rejected: int
    items: list[FeedbackItemResult]


# What the retention policy (``learnloop gc``) did to a version, on every view of it.
ArtifactsPrunedAt = Annotated[
    datetime | None,
    Field(
        description="When the retention policy removed its artifact (null: kept): it can no longer be served, "
        "promoted, compared or explained (409 artifact_removed); its record and metrics stay."
    ),
]
CachesDroppedAt = Annotated[
    datetime | None,
    Field(description="When the retention policy dropped its re-creatable caches (null: kept); it still loads."),
]
StatusChangedAt = Annotated[
    datetime | None,
    Field(
        description="When it took its current status (null: not since it was registered, or before learnloop "
        "recorded it); a retired or rejected version's retention age counts from it."
    ),
]


class VersionSummary(BaseModel):
    version: int
    status: str
    status_reason: str | None
    created_at: datetime
    golden_accuracy: float | None
    recent_accuracy: float | None
    parent_version: int | None
    artifacts_pruned_at: ArtifactsPrunedAt
    caches_dropped_at: CachesDroppedAt
    status_changed_at: StatusChangedAt

    @classmethod
    def of(cls, v: ModelVersion) -> VersionSummary:
        return cls(
            version=v.version,
            status=v.status.value,
            status_reason=v.status_reason,
            created_at=v.created_at,
            golden_accuracy=v.metrics.get("golden", {}).get("accuracy"),
            recent_accuracy=v.metrics.get("recent", {}).get("accuracy"),
            parent_version=v.parent_version,
            artifacts_pruned_at=v.artifacts_pruned_at,
            caches_dropped_at=v.caches_dropped_at,
            status_changed_at=v.status_changed_at,
        )


class CandidatePublic(BaseModel):
    """One candidate a retrain tried (``policy.candidate_families``, ``policy.search_families``)."""

    family: str
    params: dict[str, Any] = Field(description="Its parameters (a searched one: its best trial's).")
    searched: bool
    fold_scores: list[float] = Field(description="Accuracy on each forward-chaining fold's block.")
    score: float | None = Field(description="Accuracy over all the folds' blocks; null: it failed.")
    seconds: float
    trials: int = Field(description="A searched candidate: trials in its Optuna study (pruned ones included).")
    pruned: int
    study: str | None = Field(description="The Optuna study of a searched candidate (GET .../studies/{study}).")
    error: str | None
    chosen: bool
    update: bool = Field(
        default=False,
        description="It continued the champion (an update); false: fitted from scratch. A family whose fit "
        "continues its previous version competes as both.",
    )


class SelectionPublic(BaseModel):
    """How a retrain chose its candidate: on the training data before the gate's evidence only."""

    family: str
    params: dict[str, Any]
    reason: str
    metric: str
    folds: int
    judged_examples: int
    update: bool = Field(default=False, description="The version continued the champion (an update).")
    candidates: list[CandidatePublic]


class VersionPublic(BaseModel):
    model: str
    version: int
    status: str
    status_reason: str | None
    family: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    verdict: dict[str, Any] | None
    lineage: dict[str, Any]
    created_at: datetime
    train_seconds: float | None
    erasures: list[dict[str, Any]] = Field(
        default_factory=list, description="When subjects' data was erased from the snapshot it was trained on."
    )
    selection: SelectionPublic | None = Field(
        None, description="The candidates its retrain tried and why this one won (null: none competed)."
    )
    artifacts_pruned_at: ArtifactsPrunedAt
    caches_dropped_at: CachesDroppedAt
    status_changed_at: StatusChangedAt

    @classmethod
    def of(cls, v: ModelVersion) -> VersionPublic:
        return cls(
            model=v.model,
            version=v.version,
            status=v.status.value,
            status_reason=v.status_reason,
            family=v.family,
            params=v.params,
            metrics=v.metrics,
            verdict=v.verdict,
            lineage={
                "parent_version": v.parent_version,
                "snapshot_hash": v.snapshot_hash,
                "snapshot_counts": v.metrics.get("snapshot_counts"),
                "privacy": v.metrics.get("privacy"),  # a differentially private version's guarantee
                "code_version": v.code_version,
                "artifact_uri": v.artifact_uri,
            },
            created_at=v.created_at,
            train_seconds=v.train_seconds,
            erasures=list(v.erasures),
            selection=v.metrics.get("selection"),
            artifacts_pruned_at=v.artifacts_pruned_at,
            caches_dropped_at=v.caches_dropped_at,
            status_changed_at=v.status_changed_at,
        )


class JobPublic(BaseModel):
    job_id: str
    model: str
    kind: str
    status: str
    progress: float
    message: str | None
    error: str | None
    result: dict[str, Any] | None
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker: str | None = Field(None, description="The claiming worker's id (random per process; @host:pid for people).")
    lease_until: datetime | None = Field(None, description="Running: any worker may reclaim the job after this.")
    attempts: int = Field(0, description="Times the job was claimed; a reclaimed retrain runs again from scratch.")
    last_error: str | None = Field(None, description="Why the last attempt ended unfinished (its lease expired).")
    cancelled_by: str | None = Field(None, description="Cancelled: who cancelled the job.")
    cancel_reason: str | None = Field(None, description="Cancelled: why.")

    @classmethod
    def of(cls, j: Job) -> JobPublic:
        return cls(
            job_id=j.id,
            model=j.model,
            kind=j.kind,
            status=j.status.value,
            progress=j.progress,
            message=j.message,
            error=j.error,
            result=j.result,
            requested_by=j.requested_by,
            created_at=j.created_at,
            started_at=j.started_at,
            finished_at=j.finished_at,
            worker=j.worker,
            lease_until=j.lease_until,
            attempts=j.attempts,
            last_error=j.last_error,
            cancelled_by=j.cancelled_by,
            cancel_reason=j.cancel_reason,
        )


class JobAccepted(BaseModel):
    job_id: str
    status: str


class DeploymentPublic(BaseModel):
    model: str
    champion_version: int | None
    previous_version: int | None
    revision: int
    updated_at: datetime

    @classmethod
    def of(cls, d: Deployment) -> DeploymentPublic:
        return cls(
            model=d.model,
            champion_version=d.champion_version,
            previous_version=d.previous_version,
            revision=d.revision,
            updated_at=d.updated_at,
        )


class ModelSummary(BaseModel):
    name: str
    task: str
    labels: list[str]
    family: str
    champion_version: int | None

    @classmethod
    def of(cls, m: Model, champion: int | None) -> ModelSummary:
        return cls(
            name=m.name,
            task=get_task(m.task).describe(m),
            labels=list(m.labels),
            family=m.family,
            champion_version=champion,
        )


class RolloutCreate(_Strict):
    version: int = Field(ge=1, le=DB_INT_MAX, description="The challenger.")
    strategy: Literal["canary", "shadow", "ab"] = "canary"
    share: float | None = Field(
        default=None, gt=0, le=1, description="First traffic share (default: the first canary step, 50% for A/B)."
    )
    baseline: int | None = Field(
        default=None, ge=1, le=DB_INT_MAX, description="A/B only: arm A, when not the champion."
    )
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Policy fields for this rollout only, e.g. {'canary_steps': '10,50'}."
    )
    reason: str | None = Field(default=None, max_length=1000)
    force: bool = Field(default=False, description="Roll out a version the offline gate rejected.")


class RolloutPublic(BaseModel):
    """A rollout with its latest look: per-arm sample sizes and accuracy, the test, the
    guardrails and the decision."""

    id: int
    model: str
    version: int
    baseline_version: int
    strategy: str
    status: str
    share: float
    steps: list[float]
    step: int
    settings: dict[str, Any]
    stats: dict[str, Any]
    actor: str
    reason: str | None
    started_at: datetime
    step_started_at: datetime
    updated_at: datetime
    ended_at: datetime | None

    @classmethod
    def of(cls, r: Rollout) -> RolloutPublic:
        return cls(
            id=r.id,
            model=r.model,
            version=r.version,
            baseline_version=r.baseline_version,
            strategy=r.strategy.value,
            status=r.status.value,
            share=r.share,
            steps=list(r.steps),
            step=r.step,
            settings=r.settings.to_dict(),
            stats=r.stats,
            actor=r.actor,
            reason=r.reason,
            started_at=r.started_at,
            step_started_at=r.step_started_at,
            updated_at=r.updated_at,
            ended_at=r.ended_at,
        )


class SampleSizePublic(BaseModel):
    baseline: float
    delta: float
    alpha: float
    power: float
    fixed_per_arm: int
    sequential_per_arm: int
    summary: str


class ModelDetail(ModelSummary):
    policy: dict[str, Any]
    deployment: DeploymentPublic
    rollout: RolloutPublic | None = None
    versions: list[VersionSummary]
    feedback_counts: dict[str, int]
    last_retrain: JobPublic | None
    created_at: datetime


class ActionRequest(_Strict):
    reason: str | None = Field(default=None, max_length=1000)


class PromoteRequest(ActionRequest):
    force: bool = Field(default=False, description="Promote a version the offline gate rejected.")


class PolicyUpdate(_Strict):
    changes: dict[str, Any] = Field(
        description="Policy fields to change, e.g. {'retrain_every': 100}.",
        json_schema_extra={"propertyNames": {"enum": list(FIELD_NAMES)}},
    )


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    pid: int  # the answering process
    database: str
    models: dict[str, int | None]
    unavailable: dict[str, str]
    prediction_log_backlog: int
    feedback_backlog: int


class ReadinessPublic(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]  # database, prediction_log, feedback, models: "ok" or what is wrong


class EventPublic(BaseModel):
    id: int
    model: str
    kind: str
    version: int | None
    actor: str
    reason: str | None
    data: dict[str, Any]
    created_at: datetime | None

    @classmethod
    def of(cls, e: Event) -> EventPublic:
        return cls(
            id=e.id,
            model=e.model,
            kind=e.kind,
            version=e.version,
            actor=e.actor,
            reason=e.reason,
            data=e.data,
            created_at=e.created_at,
        )


class OnlineAccuracyPublic(BaseModel):
    version: int | None
    n: int = Field(description="Judged answers (one outcome per prediction).")
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    macro_f1: float | None = Field(description="Over the answers whose true label the feedback names.")
    macro_f1_ci: list[float] | None = Field(description="95% percentile-bootstrap interval of macro-F1.")
    n_labelled: int
    unknown: int


class OnlineRatingPublic(BaseModel):
    version: int | None
    n: int = Field(description="Rated answers (the latest rating of each).")
    mean: float | None
    ci_low: float | None = Field(description="95% Student-t interval of the mean rating.")
    ci_high: float | None
    threshold: float | None = Field(description="policy.min_mean_rating; null: the rating alarm is off.")
    alarm: bool
    reason: str


class PerformancePublic(BaseModel):
    """The champion on live traffic: accuracy judged by feedback, a label-free estimate, the alarm."""

    model: str
    version: int | None
    online: OnlineAccuracyPublic
    golden_accuracy: float | None
    golden_ece: float | None
    expected_accuracy: float | None = Field(description="Mean top-class probability of the newest answers.")
    expected_n: int
    alarm: bool
    threshold: float | None
    reason: str
    rating: OnlineRatingPublic = Field(description="The mean rating of the newest rated answers, and its alarm.")
    series: list[dict[str, Any]] = Field(description="Online accuracy per version and day, with 95% intervals.")


class DriftResultPublic(BaseModel):
    """One detector's verdict: drift needs both ``p_value < alpha`` and ``effect_size >= effect_threshold``."""

    detector: str
    test: str
    statistic: float | None
    p_value: float | None
    effect: str
    effect_size: float | None
    effect_threshold: float
    alpha: float
    n_reference: int
    n_window: int
    drifted: bool
    status: Literal["ok", "drift", "insufficient_data"]
    message: str
    detail: dict[str, Any]


class DriftCheckPublic(BaseModel):
    """A drift check of the serving version's newest answers against its training-time reference."""

    id: int
    model: str
    version: int
    n: int = Field(description="Answers in the window.")
    window_start: datetime | None
    window_end: datetime | None
    status: Literal["ok", "drift", "insufficient_data", "no_reference"]
    drifted: bool
    alarms: list[str] = Field(description="The detectors that alarmed.")
    message: str
    results: list[DriftResultPublic]
    created_at: datetime

    @classmethod
    def of(cls, c: DriftCheck) -> DriftCheckPublic:
        return cls(
            id=c.id,
            model=c.model,
            version=c.version,
            n=c.n,
            window_start=c.window_start,
            window_end=c.window_end,
            status=c.status,
            drifted=c.drifted,
            alarms=c.alarms,
            message=c.message,
            results=[DriftResultPublic.model_validate(r) for r in c.results],
            created_at=c.created_at,
        )


class StudySummaryPublic(BaseModel):
    """An Optuna study of a model's parameters (``learnloop tune``, or a retrain's search)."""

    name: str
    family: str
    kind: str = Field(description="tune, or retrain (a retrain's search).")
    trials: int
    best_value: float | None = Field(description="The best trial's accuracy over the folds.")
    started: datetime | None

    @classmethod
    def of(cls, s: StudySummary) -> StudySummaryPublic:
        return cls(
            name=s.name, family=s.family, kind=s.kind, trials=s.trials, best_value=s.best_value, started=s.started
        )


class TrialPublic(BaseModel):
    number: int
    state: str = Field(description="complete, pruned, fail, running or waiting.")
    value: float | None = Field(description="Accuracy over the forward-chaining folds' blocks.")
    params: dict[str, Any] = Field(description="What the trial suggested.")
    fold_scores: list[float]
    intermediate: dict[int, float] = Field(description="Fold -> accuracy so far (what pruning compared).")
    started: datetime | None
    completed: datetime | None
    seconds: float | None


class StudyPublic(BaseModel):
    """A study in full: its best parameters, every trial and each parameter's importance."""

    summary: StudySummaryPublic
    attrs: dict[str, Any] = Field(description="What the study records about itself: model, snapshot, cutoff...")
    best_trial: int | None
    best_params: dict[str, Any] = Field(description="Every parameter of the family, as the best trial ran it.")
    importance: dict[str, float] = Field(description="Parameter -> importance (fANOVA; shares sum to 1).")
    trials: list[TrialPublic]

    @classmethod
    def of(cls, v: StudyView) -> StudyPublic:
        return cls(
            summary=StudySummaryPublic.of(v.summary),
            attrs=v.attrs,
            best_trial=v.best_trial,
            best_params=v.best_params,
            importance=v.importance,
            trials=[
                TrialPublic(
                    number=t.number,
                    state=t.state,
                    value=t.value,
                    params=t.params,
                    fold_scores=t.fold_scores,
                    intermediate=t.intermediate,
                    started=t.started,
                    completed=t.completed,
                    seconds=t.seconds,
                )
                for t in v.trials
            ],
        )
