"""Prometheus metrics, one registry per ``Services`` (no global state, tests stay isolated).

A ground-floor module (it imports nothing of learnloop): any layer may count, none has to
import a feature package to do it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
GENERATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class GenerationMetrics:
    """The in-process generation engines' metrics (``families.causal_lm.engine``), labelled by
    base model only: a base is loaded once per process, so the labels stay few (adapters, one
    per served version, are counted, never used as a label)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.queued = Gauge(
            "learnloop_generation_queued", "Generation requests waiting for the engine", ["base"], registry=r
        )
        self.running = Gauge(
            "learnloop_generation_running", "Rows generating in the engine's running batch", ["base"], registry=r
        )
        self.adapters = Gauge(
            "learnloop_generation_adapters_loaded", "Adapters attached to the base's engine", ["base"], registry=r
        )
        self.requests = Counter(
            "learnloop_generation_requests",
            "Generation requests by outcome (admitted; refused: full, closed, unknown_adapter)",
            ["base", "outcome"],
            registry=r,
        )
        self.batch_rows = Histogram(
            "learnloop_generation_batch_rows",
            "Rows sharing one decoding forward pass",
            ["base"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "learnloop_generation_tokens",
            "Tokens read (prompt) and generated (completion)",
            ["base", "kind"],
            registry=r,
        )
        self.first_token_seconds = Histogram(
            "learnloop_generation_first_token_seconds",
            "Time from submitting a request to its first token (queueing and prefill included)",
            ["base"],
            buckets=GENERATION_BUCKETS,
            registry=r,
        )
        self.seconds = Histogram(
            "learnloop_generation_seconds",
            "Time a request spends generating, from its prefill to its last token (queueing excluded)",
            ["base"],
            buckets=GENERATION_BUCKETS,
            registry=r,
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "learnloop_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "learnloop_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.http_refused = Counter(
            "learnloop_http_refused",
            "Requests refused at the edge, by route class and reason (busy, full: 503; too_large: 413; "
            "too_deep: 422; too_slow: 408; disconnected: the client left before its turn)",
            ["route_class", "reason"],
            registry=r,
        )
        self.auth_failures = Counter(
            "learnloop_auth_failures",
            "Failed authentications by reason (bad_key, bad_token, forbidden, login_failed; throttled: refused "
            "429 before any check), every one, written to the audit trail or not",
            ["reason"],
            registry=r,
        )
        self.predictions = Counter(
            "learnloop_predictions", "Predictions served", ["model", "version", "route"], registry=r
        )
        self.feedback = Counter("learnloop_feedback", "Feedback events stored", ["model", "kind"], registry=r)
        self.feedback_rejected = Counter(
            "learnloop_feedback_rejected",
            "Feedback events refused at intake, by error code",
            ["model", "code"],
            registry=r,
        )
        self.feedback_retracted = Counter(
            "learnloop_feedback_retracted", "Feedback events taken back by who gave them", ["model", "kind"], registry=r
        )
        self.retrains = Counter("learnloop_retrains", "Retrains by outcome", ["model", "outcome"], registry=r)
        self.prediction_queue = Gauge(
            "learnloop_prediction_log_backlog", "Predictions waiting to be written", registry=r
        )
        self.feedback_queue = Gauge("learnloop_feedback_backlog", "Feedback events waiting to commit", registry=r)
        self.job_queue = Gauge("learnloop_jobs_queued", "Jobs waiting for a worker", registry=r)
        self.shadow_skipped = Counter(
            "learnloop_shadow_skipped", "Shadow copies skipped because the shadow queue was full", ["model"], registry=r
        )
        self.shadow_errors = Counter("learnloop_shadow_errors", "Shadow answers that failed", ["model"], registry=r)
        self.canary_fallbacks = Counter(
            "learnloop_canary_fallbacks",
            "Challenger answers that failed and were served by the champion",
            ["model"],
            registry=r,
        )
        self.rollout_share = Gauge(
            "learnloop_rollout_share",
            "Share of traffic on (or copied to) the challenger",
            ["model", "strategy"],
            registry=r,
        )
        self.online_accuracy = Gauge(
            "learnloop_online_accuracy", "Champion accuracy judged by the newest feedback", ["model"], registry=r
        )
        self.expected_accuracy = Gauge(
            "learnloop_expected_accuracy",
            "Champion's mean top-class probability (label-free estimate)",
            ["model"],
            registry=r,
        )
        self.accuracy_alarm = Gauge(
            "learnloop_accuracy_alarm", "1 while online accuracy is shown below the alarm line", ["model"], registry=r
        )
        self.online_mean_rating = Gauge(
            "learnloop_online_mean_rating",
            "Champion's mean rating (1-5) over its newest rated answers",
            ["model"],
            registry=r,
        )
        self.rating_alarm = Gauge(
            "learnloop_rating_alarm", "1 while the mean rating is shown below min_mean_rating", ["model"], registry=r
        )
        self.champion = Gauge("learnloop_champion_version", "Version serving as champion", ["model"], registry=r)
        self.drift_effect = Gauge(
            "learnloop_drift_effect",
            "Effect size of the latest drift check, per detector",
            ["model", "detector"],
            registry=r,
        )
        self.drift_alarm = Gauge(
            "learnloop_drift_alarm",
            "1 while the detector's latest drift check alarms",
            ["model", "detector"],
            registry=r,
        )
        self.drift_checks = Counter(
            "learnloop_drift_checks",
            "Drift checks by outcome (ok, drift, insufficient_data, no_reference)",
            ["model", "outcome"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "learnloop_webhook_deliveries",
            "Webhook delivery attempts by outcome (delivered, retry, failed)",
            ["outcome"],
            registry=r,
        )
        self.webhook_pending = Gauge(
            "learnloop_webhook_deliveries_pending", "Webhook deliveries waiting to be sent or retried", registry=r
        )
        self.generation = GenerationMetrics(r)
