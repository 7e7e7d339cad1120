"""Domain objects shared across packages. Plain data; no I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from learnloop.errors import ValidationError


class Task(StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"


class VersionStatus(StrEnum):
    CANDIDATE = "candidate"
    REJECTED = "rejected"
    CHALLENGER = "challenger"
    CHAMPION = "champion"
    RETIRED = "retired"
    FAILED = "failed"


class FeedbackKind(StrEnum):
    LABEL = "label"
    THUMBS = "thumbs"
    RATING = "rating"
    EXAMPLE = "example"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


_KIND_NAMES = {"bool": "true or false", "int": "an integer", "float": "a number"}


# Fields older versions stored that no longer mean anything; ignored when a policy is loaded.
_RETIRED_POLICY_FIELDS = frozenset({"recent_holdout_fraction"})


@dataclass(frozen=True)
class Policy:
    """Per-model rules for retraining and promotion. Stored with the model."""

    retrain_every: int = 200  # new labelled feedback events that trigger a retrain
    cooldown_seconds: float = 300.0  # minimum time between automatic retrains
    min_train_examples: int = 50
    recent_blocks: int = 4  # forward-chaining blocks of the feedback the champion never saw
    recent_holdout_max: int = 2_000  # at most this many of the newest unseen events are judged on
    min_recent_examples: int = 30  # fewer than this: the recent check cannot pass
    golden_margin: float = 0.05  # non-inferiority margin on the golden set (accuracy, 0.05 = 5 points)
    alpha: float = 0.05  # significance level of the paired tests
    min_recent_gain: float = 0.0  # required point gain on the recent holdout
    feedback_weight: float = 1.0  # training weight of a feedback-derived example (a bootstrap one weighs 1)
    auto_promote: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "bool":
                ok = isinstance(value, bool)
            elif f.type == "int":
                ok = isinstance(value, int) and not isinstance(value, bool)
            else:  # float: an int is fine and is stored as a float
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                if ok:
                    object.__setattr__(self, f.name, float(value))
            if not ok:
                raise ValidationError(
                    f"policy.{f.name} must be {_KIND_NAMES[str(f.type)]}, got {value!r}",
                    field=f"policy.{f.name}",
                )
        checks = [
            (self.retrain_every >= 1, "retrain_every", "must be >= 1"),
            (self.cooldown_seconds >= 0, "cooldown_seconds", "must be >= 0"),
            (self.min_train_examples >= 2, "min_train_examples", "must be >= 2"),
            (2 <= self.recent_blocks <= 20, "recent_blocks", "must be in [2, 20]"),
            (self.recent_holdout_max >= 1, "recent_holdout_max", "must be >= 1"),
            (self.min_recent_examples >= 1, "min_recent_examples", "must be >= 1"),
            (0 <= self.golden_margin < 1, "golden_margin", "must be in [0, 1)"),
            (0 < self.alpha < 1, "alpha", "must be in (0, 1)"),
            (-1 < self.min_recent_gain < 1, "min_recent_gain", "must be in (-1, 1)"),
            (0 < self.feedback_weight <= 1000, "feedback_weight", "must be in (0, 1000]"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise ValidationError(f"policy.{name} {rule}", field=f"policy.{name}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k not in _RETIRED_POLICY_FIELDS}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidationError(
                f"unknown policy field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                field="policy",
            )
        return cls(**data)

    def updated(self, changes: dict[str, Any]) -> Policy:
        return Policy.from_dict({**self.to_dict(), **changes})


@dataclass(frozen=True)
class Model:
    name: str
    task: Task
    labels: tuple[str, ...]
    family: str
    params: dict[str, Any]
    policy: Policy
    created_at: datetime
    retrain_watermark: datetime | None = None  # feedback up to here was in the last snapshot
    last_retrain_at: datetime | None = None

    def check_label(self, label: str, field_name: str = "label") -> str:
        if label not in self.labels:
            raise ValidationError(
                f"unknown label {label!r}; model {self.name!r} knows {list(self.labels)}",
                field=field_name,
            )
        return label


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


@dataclass(frozen=True)
class Deployment:
    model: str
    champion_version: int | None
    previous_version: int | None
    revision: int
    updated_at: datetime


@dataclass(frozen=True)
class Prediction:
    id: str
    model: str
    version: int
    route: str
    text: str
    label: str
    probabilities: dict[str, float]
    subject: str | None
    created_at: datetime
    latency_ms: float


@dataclass(frozen=True)
class Feedback:
    id: str
    model: str
    kind: FeedbackKind
    prediction_id: str | None
    client_id: str | None
    label: str | None
    thumbs: str | None
    rating: int | None
    text: str | None
    subject: str | None
    metadata: dict[str, Any] | None
    created_at: datetime


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
    worker: str | None = None


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
