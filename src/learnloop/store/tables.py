"""Table definitions (SQLAlchemy Core). Rows never leave ``store/``: repositories map them
to the domain objects in ``learnloop.domain``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        return value.astimezone(UTC) if dialect.name != "sqlite" else value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


ID = String(36)

models = Table(
    "models",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("task", String(16), nullable=False),  # the Task plug-in's key ("classification")
    Column("labels", JSON, nullable=False),  # the label set (classification; empty for tasks without labels)
    Column("family", String(64), nullable=False),
    Column("params", JSON, nullable=False),
    Column("policy", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retrain_watermark", UTCDateTime),
    Column("last_retrain_at", UTCDateTime),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64), ForeignKey("models.name", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_reason", Text),
    Column("family", String(64), nullable=False),
    Column("params", JSON, nullable=False),
    Column("snapshot_hash", String(64)),
    Column("parent_version", Integer),
    Column("code_version", String(64), nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("verdict", JSON),
    Column("artifact_uri", Text, nullable=False),
    Column("train_seconds", Float),
    Column("created_at", UTCDateTime, nullable=False),
    # Marks of subjects' data erased from the snapshot it was trained on (metrics stay as measured).
    Column("erasures", JSON),
    Column("cost", JSON),  # what its fit cost (domain.TrainingCost)
    Column("artifacts_pruned_at", UTCDateTime),  # its artifact removed by the retention policy
    Column("caches_dropped_at", UTCDateTime),  # its re-creatable caches dropped (it still loads)
    Column("status_changed_at", UTCDateTime),  # when its status last changed (null: not since 0016)
    UniqueConstraint("model", "version", name="uq_model_versions_model_version"),
)

deployments = Table(
    "deployments",
    metadata,
    Column("model", String(64), ForeignKey("models.name", ondelete="CASCADE"), primary_key=True),
    Column("champion_version", Integer),
    Column("previous_version", Integer),
    Column("revision", Integer, nullable=False, default=0),
    Column("updated_at", UTCDateTime, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("version", Integer),
    Column("actor", String(128), nullable=False),
    Column("reason", Text),
    Column("data", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

examples = Table(
    "examples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64), ForeignKey("models.name", ondelete="CASCADE"), nullable=False),
    Column("split", String(16), nullable=False),  # train | golden
    Column("text", Text, nullable=False),
    Column("label", Text, nullable=False),  # a label, or a generative model's response
    Column("source", Text, nullable=False),
    Column("metadata", JSON),  # a row's attributes (fairness groups on the golden set), never a feature
    Index("ix_examples_model_split", "model", "split"),
)

predictions = Table(
    "predictions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("model", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("route", String(16), nullable=False),
    Column("text", Text, nullable=False),  # the input as text (classification: the text; generation: the prompt)
    Column("answer", Text, nullable=False),  # the task's answer as JSON text (written on the hot path)
    Column("subject", String(128)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Index("ix_predictions_model_created", "model", "created_at"),
    # A version's answers, newest first (drift windows, expected accuracy, the online-accuracy
    # join for a version with few answers yet).
    Index("ix_predictions_model_version", "model", "version", "created_at"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", ID, primary_key=True),
    Column("model", String(64), nullable=False),
    Column("client_id", String(128)),
    Column("prediction_id", ID),
    Column("kind", String(16), nullable=False),
    Column("payload", JSON, nullable=False),  # what the event says, by kind (label, thumbs, rating, text, ...)
    Column("subject", String(128)),
    Column("metadata", JSON),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("model", "client_id", name="uq_feedback_model_client_id"),
    Index("ix_feedback_model_created", "model", "created_at"),
    # Both join keys of feedback -> predictions: with (prediction_id) alone, stale statistics
    # let PostgreSQL AND it with a model-only index, one scan per answer (minutes at 1M rows).
    Index("ix_feedback_prediction", "prediction_id", "model"),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("model", String(64), nullable=False),
    Column("uri", Text, nullable=False),
    Column("counts", JSON, nullable=False),
    Column("cutoff", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("model", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    # Set to "<model>:<kind>" while queued or running: the unique constraint makes
    # "one retrain per model at a time" hold across every process.
    Column("active_key", String(128), unique=True),
    Column("progress", Float, nullable=False, default=0.0),
    Column("message", Text),
    Column("error", Text),
    Column("result", JSON),
    Column("requested_by", String(128), nullable=False),
    Column("worker", String(128)),
    # A running job is its worker's until ``lease_until`` (renewed by heartbeat); after that
    # any worker reclaims it (see ``jobs.leases``).
    Column("lease_until", UTCDateTime),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("last_error", Text),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    # Cancelled (``JobService.cancel``): by whom and why; the worker running it stops its fit.
    Column("cancelled_by", String(128)),
    Column("cancel_reason", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Index("ix_jobs_status_created", "status", "created_at"),
)

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64), ForeignKey("models.name", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("baseline_version", Integer, nullable=False),
    Column("strategy", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("share", Float, nullable=False),
    Column("steps", JSON, nullable=False),
    Column("step", Integer, nullable=False),
    Column("settings", JSON, nullable=False),
    Column("stats", JSON, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text),
    Column("started_at", UTCDateTime, nullable=False),
    Column("step_started_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Index("ix_rollouts_model_status", "model", "status"),
)

# What a shadow version answered for a served prediction (never returned to the client).
shadow_predictions = Table(
    "shadow_predictions",
    metadata,
    Column("prediction_id", ID, primary_key=True),
    Column("rollout_id", Integer, nullable=False),
    Column("model", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("answer", Text, nullable=False),  # JSON text, as predictions.answer
    Column("latency_ms", Float, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_shadow_predictions_rollout", "rollout_id"),
)

# -- monitoring and notifications ---------------------------------------------------------------

drift_checks = Table(
    "drift_checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64), ForeignKey("models.name", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("n", Integer, nullable=False),  # predictions in the window
    Column("window_start", UTCDateTime),
    Column("window_end", UTCDateTime),
    Column("drifted", Boolean, nullable=False),
    Column("results", JSON, nullable=False),  # one DriftResult.to_dict() per detector
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_drift_checks_model_created", "model", "created_at"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64)),  # None: every model
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),  # HMAC-SHA256 key of the signature header
    Column("kinds", JSON, nullable=False),  # event kinds delivered; [] means the default set
    Column("format", String(16), nullable=False),  # json | slack
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("webhook_id", Integer, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    UniqueConstraint("webhook_id", "event_id", name="uq_deliveries_webhook_event"),
    Index("ix_deliveries_status_next", "status", "next_attempt_at"),
)

# Where each notifier stopped reading the event log (one row per consumer).
cursors = Table(
    "cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("event_id", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


# Scoped API keys: the secret is never stored, only the SHA-256 of the whole key (a 256-bit random
# secret: no salt needed); ``prefix`` is its public start, unique, by which a key is found.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),  # unique among keys not revoked (the service checks)
    Column("prefix", String(32), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("models", JSON, nullable=False),  # [] means every model
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    Column("created_by", String(128), nullable=False),
    Column("rate", String(32)),  # its request rate ("200/s"), else the server's default
)

# Dashboard sessions: a random cookie, stored as its SHA-256, with the hash of the key that
# opened it (a revoked, expired or changed key ends its sessions); deleted at logout.
sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_sessions_expires_at", "expires_at"),
)
