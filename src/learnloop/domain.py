"""Domain objects shared across packages. Plain data; no I/O."""

from __future__ import annotations

from collections.abc import Sequence
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


_KIND_NAMES = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string"}
_CHOICES = {
    "rollout": tuple(s.value for s in Strategy),
    "canary_require": ("no_harm", "non_inferior", "superior"),
    "canary_on_inconclusive": ("rollback", "promote"),
    "conflict_resolution": ("dawid_skene", "latest"),
    "noise_filter": ("off", "down_weight", "hold"),
}


PII_KINDS = ("email", "phone", "card", "iban", "ip", "name")


def _check_pii_kinds(value: str) -> None:
    unknown = [k for k in (part.strip() for part in value.split(",")) if k and k not in PII_KINDS]
    if unknown:
        raise ValidationError(
            f"policy.pii_scrub names unknown kind(s) {unknown}; known: {', '.join(PII_KINDS)} (empty: off)",
            field="policy.pii_scrub",
        )


def parse_steps(value: str | Sequence[float]) -> tuple[float, ...]:
    """Canary traffic steps as shares in (0, 1), increasing: "5,25,50" (percent) or [0.05, 0.25]."""
    if isinstance(value, str):
        try:
            shares = tuple(float(part) / 100 for part in value.replace(" ", "").split(",") if part)
        except ValueError:
            raise ValidationError(
                f"canary steps must be comma-separated percentages such as 5,25,50; got {value!r}",
                field="policy.canary_steps",
            ) from None
    else:
        shares = tuple(float(v) for v in value)
    if not shares or any(not 0 < s < 1 for s in shares) or list(shares) != sorted(set(shares)):
        raise ValidationError(
            f"canary steps must be increasing shares strictly between 0% and 100%; got {value!r}",
            field="policy.canary_steps",
        )
    return shares


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
    # Golden set, non-inferiority of the other metrics (paired bootstrap, same confidence as accuracy):
    golden_f1_margin: float = 0.05  # macro-F1 may not be shown lower by more than this
    golden_auc_margin: float = 0.05  # ROC AUC likewise
    golden_ece_margin: float = 0.05  # expected calibration error may not be shown higher by more than this
    # Slices of the recent feedback (metadata fields, comma-separated, e.g. "domain,language"):
    slice_fields: str = ""
    slice_margin: float = 0.05  # a slice must not be significantly worse by more than this
    min_slice_examples: int = 50  # smaller slices are reported, not judged
    auto_promote: bool = True
    # -- rollout of a version that passed the gate (swap | canary | shadow | ab) -----------
    rollout: str = "swap"
    canary_steps: str = "5,25,50"  # percent of traffic on the challenger, step by step
    canary_step_seconds: float = 300.0  # at least this long on a step before the next
    canary_min_feedback: int = 100  # per arm, before the live test may decide anything
    canary_margin: float = 0.02  # non-inferiority margin of the live test (accuracy, 0.02 = 2 points)
    canary_require: str = "no_harm"  # promote at the end of the schedule unless harm shows; or
    # "non_inferior" (shown not worse than the margin) or "superior" (shown better)
    canary_max_seconds: float = 86_400.0  # an experiment still undecided after this ends ...
    canary_max_feedback: int = 20_000  # ... or after this much feedback per arm ...
    canary_on_inconclusive: str = "rollback"  # ... this way (or "promote")
    shadow_share: float = 1.0  # share of traffic copied to a shadow
    guardrail_max_error_rate: float = 0.01  # challenger answers that failed (served by the champion instead)
    guardrail_latency_ratio: float = 3.0  # challenger p99 latency above this multiple of the champion's
    guardrail_max_label_shift: float = 0.25  # total variation between the arms' predicted-label distributions
    guardrail_min_predictions: int = 200  # per arm, before latency and label-shift guardrails may trip
    # -- monitoring and the other retrain triggers ----------------------------------------
    drift_check_seconds: float = 300.0  # how often the worker checks the champion's inputs and outputs (0: never)
    drift_window: int = 1_000  # newest predictions a drift check reads
    retrain_on_drift: bool = False  # a drift check that alarms queues a retrain
    accuracy_window: int = 200  # newest judged predictions behind the online accuracy
    accuracy_drop: float = 0.05  # alarm when online accuracy is shown this far below the golden accuracy
    retrain_on_accuracy_drop: bool = True
    retrain_schedule: str = ""  # cron expression (UTC), e.g. "0 3 * * *"; empty: no scheduled retrain
    # -- curation of a snapshot -------------------------------------------------------------
    dedup_threshold: float = 0.85  # Jaccard (character 5-grams) at which two texts are near duplicates
    max_subject_share: float = 1.0  # most of a snapshot one subject may contribute (1: no cap)
    conflict_resolution: str = "dawid_skene"  # several voters on one item: "dawid_skene" (trust-weighted) or "latest"
    noise_filter: str = "off"  # likely mislabelled feedback (cleanlab): "off", "down_weight" or "hold" (weight 0)
    noise_folds: int = 5  # cross-validation folds of the noise filter: this many extra fits per retrain
    recency_half_life: int = 0  # feedback examples: weight halves every this many newer ones (0: no decay)
    # -- privacy -----------------------------------------------------------------------------
    pii_scrub: str = "email,phone,card,iban,ip,name"  # personal data replaced in stored text ("" keeps text as sent)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "bool":
                ok = isinstance(value, bool)
            elif f.type == "str":
                if isinstance(value, int | float) and not isinstance(value, bool):  # --set canary_steps=50
                    value = str(value)
                    object.__setattr__(self, f.name, value)
                ok = isinstance(value, str)
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
            (0 <= self.golden_f1_margin <= 1, "golden_f1_margin", "must be in [0, 1] (1: not checked)"),
            (0 <= self.golden_auc_margin <= 1, "golden_auc_margin", "must be in [0, 1] (1: not checked)"),
            (0 <= self.golden_ece_margin <= 1, "golden_ece_margin", "must be in [0, 1] (1: not checked)"),
            (0 <= self.slice_margin < 1, "slice_margin", "must be in [0, 1)"),
            (self.min_slice_examples >= 1, "min_slice_examples", "must be >= 1"),
            (self.canary_step_seconds >= 0, "canary_step_seconds", "must be >= 0"),
            (self.canary_min_feedback >= 10, "canary_min_feedback", "must be >= 10"),
            (0 <= self.canary_margin < 1, "canary_margin", "must be in [0, 1)"),
            (self.canary_max_seconds > 0, "canary_max_seconds", "must be > 0"),
            (
                self.canary_max_feedback >= self.canary_min_feedback,
                "canary_max_feedback",
                "must be >= canary_min_feedback",
            ),
            (0 < self.shadow_share <= 1, "shadow_share", "must be in (0, 1]"),
            (0 <= self.guardrail_max_error_rate <= 1, "guardrail_max_error_rate", "must be in [0, 1]"),
            (self.guardrail_latency_ratio >= 1, "guardrail_latency_ratio", "must be >= 1"),
            (0 < self.guardrail_max_label_shift <= 1, "guardrail_max_label_shift", "must be in (0, 1]"),
            (self.guardrail_min_predictions >= 1, "guardrail_min_predictions", "must be >= 1"),
            (self.drift_check_seconds >= 0, "drift_check_seconds", "must be >= 0 (0: never)"),
            (self.drift_window >= 10, "drift_window", "must be >= 10"),
            (self.accuracy_window >= 10, "accuracy_window", "must be >= 10"),
            (0.5 <= self.dedup_threshold <= 1, "dedup_threshold", "must be in [0.5, 1]"),
            (0 < self.max_subject_share <= 1, "max_subject_share", "must be in (0, 1] (1: no cap)"),
            (2 <= self.noise_folds <= 10, "noise_folds", "must be in [2, 10]"),
            (self.recency_half_life >= 0, "recency_half_life", "must be >= 0 (0: no decay)"),
            (0 < self.accuracy_drop < 1, "accuracy_drop", "must be in (0, 1)"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise ValidationError(f"policy.{name} {rule}", field=f"policy.{name}")
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValidationError(
                    f"policy.{name} must be one of {', '.join(choices)}; got {getattr(self, name)!r}",
                    field=f"policy.{name}",
                )
        parse_steps(self.canary_steps)
        if self.retrain_schedule:
            from learnloop.triggers.policy import check_schedule  # the cron parser stays out of the domain

            check_schedule(self.retrain_schedule)
        if any(not f.strip() for f in self.slices) and self.slice_fields.strip():
            raise ValidationError("policy.slice_fields must be comma-separated names", field="policy.slice_fields")
        _check_pii_kinds(self.pii_scrub)

    @property
    def slices(self) -> tuple[str, ...]:
        return tuple(f.strip() for f in self.slice_fields.split(",")) if self.slice_fields.strip() else ()

    @property
    def steps(self) -> tuple[float, ...]:
        return parse_steps(self.canary_steps)

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
