"""Domain objects shared across packages. Plain data; no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from learnloop.errors import ArtifactRemovedError, ValidationError
from learnloop.policy import Policy


class VersionStatus(StrEnum):
    CANDIDATE = "candidate"
    REJECTED = "rejected"
    CHALLENGER = "challenger"
    CHAMPION = "champion"
    RETIRED = "retired"
    FAILED = "failed"


class FeedbackKind(StrEnum):
    LABEL = "label"  # classification: the label the answer should have been
    THUMBS = "thumbs"
    RATING = "rating"
    EXAMPLE = "example"  # classification: a standalone labelled text
    CORRECTION = "correction"  # generation: the text the answer should have been
    PREFERENCE = "preference"  # generation: one answer preferred over another to the same prompt
    IMPLICIT = "implicit"  # a named signal with a value (copied, regenerated, dwell_ms, ...)


class Strategy(StrEnum):
    """How a version that passed the offline gate reaches traffic."""

    SWAP = "swap"  # blue/green: all traffic at once, atomically
    CANARY = "canary"  # a sticky share of traffic, in steps, decided by live feedback
    SHADOW = "shadow"  # answers a copy of traffic off the critical path; never returned
    AB = "ab"  # a fixed split between two versions, ending in a report (and optionally a promotion)


class RolloutStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # traffic stays as it is; no automatic step or promotion (guardrails still act)
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    STOPPED = "stopped"  # ended by hand or superseded, without a decision
    CONCLUDED = "concluded"  # an A/B experiment that ended with a report and no promotion

    @property
    def active(self) -> bool:
        return self in (RolloutStatus.RUNNING, RolloutStatus.PAUSED)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Held by its worker with its fit stopped (``JobService.pause``), or, with no worker (paused
    # while queued, or its worker died while it was paused), waiting for ``resume`` to queue it.
    PAUSED = "paused"


# What a model is made of unless told: the keys of a Task and a ModelFamily plug-in, here
# rather than beside the registries (``learnloop.tasks``, ``learnloop.families``) so that what
# only names them (the CLI's option defaults, read by ``learnloop --help``) loads neither
# registry, nor numpy with it; the conformance tests hold both keys to their plug-ins.
DEFAULT_TASK = "classification"
DEFAULT_FAMILY = "tfidf-logreg"


@dataclass(frozen=True)
class Model:
    name: str
    task: str  # the key of its Task plug-in (``learnloop.tasks``): "classification"
    labels: tuple[str, ...]
    family: str
    params: dict[str, Any]
    policy: Policy
    created_at: datetime
    retrain_watermark: datetime | None = None  # feedback strictly before here was in the last snapshot
    last_retrain_at: datetime | None = None

    def check_label(self, label: str, field_name: str = "label") -> str:
        if label not in self.labels:
            raise ValidationError(
                f"unknown label {label!r}; model {self.name!r} knows {list(self.labels)}",
                field=field_name,
            )
        return label


@dataclass(frozen=True)
class TrainingCost:
    """What one fit cost the machine, measured where it ran (``training.cost``).

    ``scope`` says whose CPU time ``cpu_seconds`` is: ``"process"`` (the training process,
    every thread of it and the processes it waited for) or ``"thread"`` (the one thread that
    ran the fit inside a shared process, such as a server without an isolated training
    process: threads the fit started, BLAS pools, are not counted). ``peak_rss_bytes`` is the
    resident-set high-water mark of that process during the fit (what it held at most, its
    imported libraries included); ``memory_measure`` names how it was read. ``gpu_seconds``
    is None unless the fit ran on a GPU."""

    wall_seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    scope: str  # "process" | "thread"
    memory_measure: str  # "vmhwm" (reset at the start) | "sampled" | "maxrss" (the process's lifetime peak)
    gpu_seconds: float | None = None
    gpu_peak_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingCost:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: int
    status: VersionStatus
    family: str
    params: dict[str, Any]
    snapshot_hash: str | None
    parent_version: int | None
    code_version: str
    metrics: dict[str, Any]
    verdict: dict[str, Any] | None
    artifact_uri: str
    created_at: datetime
    status_reason: str | None = None
    train_seconds: float | None = None
    # When subjects' data was erased from its snapshot: the version was trained on data that is
    # gone (``learnloop subject erase``); a retrain without it is queued for a champion.
    erasures: tuple[dict[str, Any], ...] = ()
    cost: TrainingCost | None = None  # what its fit cost (None: registered from outside a fit)
    # Retention (``learnloop.retention``): when its artifact was removed (it can no longer be
    # loaded), and when its re-creatable caches were dropped (it still loads).
    artifacts_pruned_at: datetime | None = None
    caches_dropped_at: datetime | None = None
    status_changed_at: datetime | None = None  # None: not changed since registration (or before 0016)

    def check_artifact(self) -> None:
        """An ``ArtifactRemovedError`` (409) when the retention policy removed its artifact."""
        if self.artifacts_pruned_at is not None:
            raise ArtifactRemovedError(
                f"version {self.version} of {self.model!r} ({self.status.value}) had its artifact removed by the "
                f"retention policy on {self.artifacts_pruned_at:%Y-%m-%d %H:%M} UTC: it cannot be served, rolled back "
                "to or loaded again (its record and metrics stay); retrain, or raise keep_rejected / keep_retired "
                "to keep more",
                field="version",
            )


@dataclass(frozen=True)
class StoredSnapshot:
    """A dataset snapshot as the registry records it: its content hash, the model it was made
    for, the key of its rows in the artifact store, what curation counted, and the feedback
    cutoff (feedback up to it is in it)."""

    hash: str
    model: str
    uri: str
    counts: dict[str, Any]
    cutoff: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Deployment:
    model: str
    champion_version: int | None
    previous_version: int | None
    revision: int
    updated_at: datetime


@dataclass(frozen=True)
class Rollout:
    """A challenger version on live traffic beside the baseline (usually the champion)."""

    id: int
    model: str
    version: int  # the challenger, arm B
    baseline_version: int  # arm A
    strategy: Strategy
    status: RolloutStatus
    share: float  # of traffic on arm B (canary, ab) or copied to it (shadow)
    steps: tuple[float, ...]
    step: int  # index into steps
    settings: Policy  # the policy in force for this rollout (model policy + overrides)
    stats: dict[str, Any]  # the latest look: per-arm counts, the test, guardrails
    actor: str
    reason: str | None
    started_at: datetime
    step_started_at: datetime
    updated_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True)
class Prediction:
    """One logged answer: what a version answered to an input. ``answer`` is the task's answer
    (stored as JSON; classification: ``{"label", "probabilities"}``), read through the task."""

    id: str
    model: str
    version: int
    route: str
    text: str  # the input as text
    answer: dict[str, Any]
    subject: str | None
    created_at: datetime
    latency_ms: float


@dataclass(frozen=True)
class FeedbackInput:
    """One feedback event as a client sends it (HTTP, the CLI, a stream): which kind it is
    follows from the fields given (``learnloop.feedback.intake``)."""

    prediction_id: str | None = None
    label: str | None = None
    thumbs: str | None = None
    rating: int | None = None
    text: str | None = None
    subject: str | None = None
    metadata: dict[str, Any] | None = None
    feedback_id: str | None = None
    correction: str | None = None  # generation: the text the answer should have been
    # A preference between two logged answers to one prompt ...
    chosen_prediction_id: str | None = None
    rejected_prediction_id: str | None = None
    # ... or a standalone one
    prompt: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    strength: float | None = None  # how strongly chosen is preferred, 0-1 (default 1)
    signal: str | None = None  # implicit: the signal's name ...
    value: float | bool | None = None  # ... and its value


@dataclass(frozen=True)
class AnswerSample:
    """What a version answered and how long it took: the guardrails' evidence."""

    answer: dict[str, Any]
    latency_ms: float


@dataclass(frozen=True)
class Feedback:
    """One feedback event. ``payload`` is what it says, by kind: ``{"label"}`` (a label
    correction), ``{"thumbs": "up"|"down"}``, ``{"rating": 1..5}``, ``{"text", "label"}`` (a
    standalone example), ``{"correction"}`` (the text a generated answer should have been),
    ``{"rejected_prediction_id", "strength"}`` (a preference for this event's prediction over
    another answer to the same prompt) or ``{"prompt", "chosen", "rejected", "strength"}`` (a
    standalone preference), ``{"signal", "value"}`` (implicit). The task the model runs decides
    which kinds it accepts (``learnloop.tasks``)."""

    id: str
    model: str
    kind: FeedbackKind
    prediction_id: str | None
    client_id: str | None
    payload: dict[str, Any]
    subject: str | None
    metadata: dict[str, Any] | None
    created_at: datetime

    @property
    def label(self) -> str | None:
        value = self.payload.get("label")
        return None if value is None else str(value)

    @property
    def thumbs(self) -> str | None:
        value = self.payload.get("thumbs")
        return None if value is None else str(value)

    @property
    def rating(self) -> int | None:
        value = self.payload.get("rating")
        return None if value is None else int(value)

    @property
    def text(self) -> str | None:
        value = self.payload.get("text")
        return None if value is None else str(value)


@dataclass(frozen=True)
class Served:
    """The logged answer a feedback event is about (its prediction)."""

    prediction_id: str
    version: int
    route: str
    text: str  # the input as text
    answer: dict[str, Any]  # the task's answer
    created_at: datetime


@dataclass(frozen=True)
class FeedbackEvent:
    """A feedback event with the answer it is about: ``served`` is None for a standalone event
    and, until that prediction is logged, for an event on a prediction (pending, joined later).
    ``shadow_answer`` is what a shadow version answered to the same request, when one did.
    ``related`` is the second answer an event names, when logged: a preference's rejected
    answer (``served`` is its chosen one)."""

    feedback: Feedback
    served: Served | None = None
    shadow_answer: dict[str, Any] | None = None
    related: Served | None = None

    @property
    def id(self) -> str:
        return self.feedback.id

    @property
    def kind(self) -> FeedbackKind:
        return self.feedback.kind

    @property
    def created_at(self) -> datetime:
        return self.feedback.created_at

    @property
    def prediction_id(self) -> str | None:
        return self.feedback.prediction_id


@dataclass(frozen=True)
class Job:
    id: str
    model: str
    kind: str
    status: JobStatus
    progress: float
    message: str | None
    error: str | None
    result: dict[str, Any] | None
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker: str | None = None  # the claiming worker's id (random per process)
    lease_until: datetime | None = None  # running: reclaimable by any worker after this
    attempts: int = 0  # times claimed; a reclaimed job is claimed again
    last_error: str | None = None  # why the last attempt ended without finishing (lease expiry)
    cancelled_by: str | None = None  # cancelled: who asked (``JobService.cancel``)
    cancel_reason: str | None = None  # cancelled: why


@dataclass(frozen=True)
class Finding:
    """What a check found that may call for a retrain. Monitoring reports ``accuracy_drop``,
    ``rating_drop`` and ``drift`` (the alarm's reason); privacy reports ``erasure`` (``versions`` were trained on an
    erased subject's data). Whether a retrain follows is decided in one place, ``triggers``."""

    model: str
    kind: Literal["accuracy_drop", "rating_drop", "drift", "erasure"]
    reason: str
    versions: tuple[int, ...] = ()


# Where a service hands its findings (``triggers.RetrainTriggers.on_finding``, wired by the
# composition root): the retrain it queued, None when the finding calls for none;
# ``ConflictError`` when a retrain of the model is already queued or running.
FindingSink = Callable[[Finding], Job | None]


# The model name of the server's own trail: events about no one model (``access/audit.py``:
# admin actions, keys, authentication failures). No model can have it (names start with a
# letter or digit).
SERVER_TRAIL = "*"


@dataclass(frozen=True)
class Event:
    id: int
    model: str
    kind: str
    version: int | None
    actor: str
    reason: str | None
    data: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(frozen=True)
class DriftCheck:
    """One drift check of a model's serving version: its newest answers (the window) against the
    reference fitted when the version was trained. ``results`` holds one ``DriftResult.to_dict()``
    per detector; it is empty when the version has no reference (trained before drift monitoring,
    or its reference could not be made or read)."""

    id: int
    model: str
    version: int
    n: int  # answers in the window
    window_start: datetime | None
    window_end: datetime | None
    drifted: bool
    results: list[dict[str, Any]]
    created_at: datetime

    @property
    def alarms(self) -> list[str]:
        """The detectors that alarmed."""
        return [r["detector"] for r in self.results if r.get("drifted")]

    @property
    def status(self) -> str:
        """``no_reference``, ``drift``, ``ok`` or ``insufficient_data`` (no detector had enough data)."""
        if not self.results:
            return "no_reference"
        if self.drifted:
            return "drift"
        if all(r.get("status") == "insufficient_data" for r in self.results):
            return "insufficient_data"
        return "ok"

    @property
    def message(self) -> str:
        if self.status == "no_reference":
            return (
                f"version {self.version} has no drift reference (trained before drift monitoring, or its "
                "reference could not be made or read); a retrain gives the next version one"
            )
        if self.status == "drift":
            return f"drift in {', '.join(self.alarms)} over the newest {self.n} answers of version {self.version}"
        if self.status == "insufficient_data":
            return f"not enough answers of version {self.version} to check ({self.n})"
        return f"no drift over the newest {self.n} answers of version {self.version}"


# -- notifications: the webhooks people register and each delivery of an event to one --------------

# What a webhook receives when it names no kinds: the decisions a person may want to hear of.
DEFAULT_KINDS: tuple[str, ...] = (
    "candidate_rejected",
    "promoted",
    "rolled_back",
    "rollout_started",
    "drift_detected",
    "accuracy_dropped",
    "rating_dropped",
    "retrain_failed",
    "auth_failure_burst",
)
ALL_KINDS = "*"  # a webhook with kinds ["*"] receives every event
WebhookFormat = Literal["json", "slack"]


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class Webhook:
    id: int
    url: str
    model: str | None  # None: every model
    kinds: tuple[str, ...]  # () means DEFAULT_KINDS
    format: WebhookFormat
    active: bool
    created_at: datetime
    secret: str  # never leaves the service except once, on creation

    @property
    def effective_kinds(self) -> tuple[str, ...]:
        return self.kinds or DEFAULT_KINDS

    def wants(self, event: Event) -> bool:
        """Whether this webhook receives ``event`` (model and kinds filters)."""
        if not self.active or (self.model is not None and event.model != self.model):
            return False
        return kind_matches(event.kind, self.effective_kinds)


def kind_matches(kind: str, kinds: Sequence[str]) -> bool:
    """``*`` matches every kind; the default set also takes any job failure (``*_failed``)."""
    if ALL_KINDS in kinds or kind in kinds:
        return True
    return tuple(kinds) == DEFAULT_KINDS and kind.endswith("_failed")


@dataclass(frozen=True)
class Delivery:
    id: int
    webhook_id: int
    event_id: int
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    event_kind: str | None = None
    event_model: str | None = None


# -- access: scoped API keys -----------------------------------------------------------------------


class Scope(StrEnum):
    """What a key may do. ``admin`` may do everything."""

    PREDICT = "predict"  # predict and generate (the OpenAI-compatible route too)
    FEEDBACK = "feedback"  # give feedback, log answers made elsewhere
    READ = "read"  # models, versions, events, performance, drift, rollouts, jobs, /metrics, the dashboard
    LABEL = "label"  # the ask queue and the labelling page: they show users' texts
    ADMIN = "admin"  # everything else: create, promote, roll back, retrain, erase, keys, webhooks


@dataclass(frozen=True)
class Rate:
    """A request rate: ``limit`` requests per ``seconds`` (``200/s``, ``6000/m``, ``10000/h``), as
    a token bucket of ``limit`` tokens refilled at ``limit / seconds`` a second (bursts of
    ``limit`` allowed)."""

    limit: int
    seconds: float

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "m", 3600.0: "h", 86400.0: "d"}.get(self.seconds)
        return f"{self.limit}/{unit}" if unit else f"{self.limit}/{self.seconds:g}s"

    @property
    def per_second(self) -> float:
        return self.limit / self.seconds


_RATE = re.compile(r"(\d{1,9})/(\d{0,6})([smhd])")
_RATE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(text: str) -> Rate:
    """``200/s``, ``6000/m``, ``10000/h``, ``100000/d`` or ``50/10s``."""
    match = _RATE.fullmatch(text.strip())
    count = int(match.group(2) or 1) if match else 0
    if match is None or int(match.group(1)) == 0 or count == 0:
        raise ValidationError(f"a rate is a count per time (200/s, 6000/m, 50/10s), not {text!r}", field="rate")
    return Rate(int(match.group(1)), float(count * _RATE_UNITS[match.group(3)]))


@dataclass(frozen=True)
class ApiKey:
    """A scoped key, as stored: never its secret, only its hash and public prefix."""

    id: int
    name: str
    prefix: str  # the public start of the key (``ll_1a2b3c4d``), to recognise it
    scopes: tuple[Scope, ...]
    models: tuple[str, ...]  # () means every model
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    created_by: str
    rate: Rate | None = None  # its own request rate (else the server's default, if any)

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)
