"""Settings: read once by the edges (CLI, app factory) and passed down; never global."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from learnloop.errors import ValidationError
from learnloop.nesting import STORED_JSON_DEPTH

N = TypeVar("N", int, float)

DEFAULT_HOME = Path("learnloop-home")  # relative: in the directory a command runs from


@dataclass(frozen=True)
class RouteLimit:
    """Admission bounds of one class of routes (see ``api/admission.py``)."""

    concurrency: int  # requests of the class handled at once
    queue: int  # more that may wait for a slot; beyond, 503 at once
    queue_seconds: float  # the longest a request waits (for a slot, or behind a busy event loop)

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.queue < 0 or not 0 < self.queue_seconds <= 60:
            raise ValueError(f"invalid route limit {self}: concurrency >= 1, queue >= 0, 0 < queue_seconds <= 60")


@dataclass(frozen=True)
class Admission:
    """Bounds per route class; beyond them a request is answered 503 with Retry-After, before
    any work is done for it. ``/health``, ``/ready`` and ``/metrics`` are never refused."""

    predict: RouteLimit = RouteLimit(concurrency=64, queue=256, queue_seconds=0.05)
    # Generation requests mostly wait for the engine's thread (which batches them and bounds its
    # own queue): enough of them in at once for a full batch and its queue, then 503.
    generate: RouteLimit = RouteLimit(concurrency=96, queue=32, queue_seconds=2.0)
    feedback: RouteLimit = RouteLimit(concurrency=256, queue=1024, queue_seconds=0.5)
    admin: RouteLimit = RouteLimit(concurrency=16, queue=64, queue_seconds=1.0)  # reads, admin, dashboard
    retry_after_seconds: int = 1


@dataclass(frozen=True)
class PredictionBatch:
    """Bounds of the batcher that answers a batching version's concurrent single-text
    predictions in one forward pass (``routing/batching.py``). Those requests skip admission's
    loop-lag rule; these bound their wait instead. Beyond them: 503 ``overloaded`` with
    Retry-After."""

    max_texts: int = 64  # texts in one pass
    max_waiting: int = 256  # texts waiting for a pass, all versions together; one more is refused at once
    wait_seconds: float = 1.0  # a text whose pass has not started within this is refused

    def __post_init__(self) -> None:
        if self.max_texts < 1 or self.max_waiting < 1 or not 0 < self.wait_seconds <= 60:
            raise ValueError(f"invalid prediction batch {self}: max_texts, max_waiting >= 1, 0 < wait_seconds <= 60")


@dataclass(frozen=True)
class Limits:
    """Bounds that keep a server healthy under bad or heavy input."""

    max_text_chars: int = 10_000
    max_batch_items: int = 1_000
    max_metadata_bytes: int = 4_096
    max_metadata_depth: int = 8  # nesting of a feedback event's metadata (at most nesting.STORED_JSON_DEPTH)
    max_metadata_keys: int = 32  # keys of a prediction's metadata (flat: scalar values only)
    max_metadata_key_chars: int = 64  # the longest key of a prediction's metadata
    max_body_bytes: int = 4 * 1024 * 1024  # a request body beyond this is refused (413) before it is read
    max_body_bytes_in_flight: int = 64 * 1024 * 1024  # all bodies held at once; beyond, 503 (memory stays bounded)
    max_json_depth: int = 32  # a JSON body nested deeper is refused (422) before it is parsed
    body_seconds: float = 30.0  # a client that takes longer to send its body is answered 408
    admission: Admission = field(default_factory=Admission)
    prediction_batch: PredictionBatch = field(default_factory=PredictionBatch)

    prediction_queue_max: int = 50_000
    prediction_flush_rows: int = 1024
    prediction_flush_seconds: float = 0.1
    feedback_queue_max: int = 20_000
    # A new model: at most this many distinct labels (a label column with more is more likely
    # an id or a free-text column than a label set), and an upload of at most this many bytes.
    max_labels: int = 1_000
    max_upload_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if not 1 <= self.max_metadata_depth <= STORED_JSON_DEPTH:
            raise ValueError(
                f"max_metadata_depth must be 1-{STORED_JSON_DEPTH}: readers hand deeper metadata over as text"
            )
        if self.max_json_depth < 2 or not 1024 <= self.max_body_bytes <= self.max_body_bytes_in_flight:
            raise ValueError("max_json_depth >= 2 and 1024 <= max_body_bytes <= max_body_bytes_in_flight")


@dataclass(frozen=True)
class GenerationSettings:
    """How this process runs in-process generative models (``families.causal_lm``)."""

    threads: int = 1  # torch threads of each generation engine (measure 2 on a quiet machine)
    # Torch threads of a generative fit and its held-out scoring in the training process. 1:
    # the training process shares the machine with serving (2 threads beside a busy process were
    # 3-8x slower: ../shared/LLM.md); on a quiet 2-core machine 2 made a DPO step 1.8x faster.
    train_threads: int = 1
    max_batch: int = 8  # requests that share one forward pass
    batch_wait_ms: float = 5.0  # how long a first request waits for others to batch with
    max_queue: int = 64  # requests waiting for the engine; beyond, 503 with Retry-After

    def __post_init__(self) -> None:
        if (
            min(self.threads, self.train_threads, self.max_batch, self.max_queue) < 1
            or not 0 <= self.batch_wait_ms <= 1000
        ):
            raise ValidationError(
                "generation settings: threads, train_threads, max_batch and max_queue >= 1, batch_wait_ms in [0, 1000]",
                field="generation",
            )


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
MIN_KEY_CHARS = 24  # a key shorter than this is refused on a non-loopback host
MIN_JWT_SECRET_CHARS = 32  # an HS256 secret shorter than this is refused (RFC 7518: at least the hash's size)


@dataclass(frozen=True)
class JwtSettings:
    """Bearer JWTs an identity provider signs (``access/tokens.py``). Exactly one way to verify
    them: an HS256 ``secret``, an RS256/ES256 ``public_key`` (PEM), a ``jwks`` document (JSON
    text), or a ``jwks_url`` to fetch it from (https; http only on loopback, for tests and a
    provider beside the server). Key material is never in a repr (nor, so, in a log)."""

    issuer: str
    audience: str
    secret: str | None = field(default=None, repr=False)
    public_key: str | None = field(default=None, repr=False)
    jwks: str | None = field(default=None, repr=False)
    jwks_url: str | None = None
    jwks_cache_seconds: float = 300.0  # a fetched key set is fetched again once this old ...
    jwks_refetch_seconds: float = 10.0  # ... or for an unknown kid, but at most once per this
    jwks_timeout_seconds: float = 5.0  # a fetch that takes longer fails (cached keys stay)
    scope_claim: str = "scope"  # space-separated scopes, or a list of them
    models_claim: str | None = None  # the models a token may use (absent from a token: every model)
    leeway_seconds: float = 30.0  # clock skew allowed on exp / nbf / iat

    def __post_init__(self) -> None:
        given = [k for k in (self.secret, self.public_key, self.jwks, self.jwks_url) if k]
        if not self.issuer or not self.audience:
            raise ValidationError("JWT: both an issuer and an audience are required", field="jwt")
        if len(given) != 1:
            raise ValidationError(
                "JWT: give exactly one of an HS256 secret, a public key file or a JWKS file or URL", field="jwt"
            )
        if self.jwks_url is not None:
            url = urlsplit(self.jwks_url)
            loopback = url.scheme == "http" and url.hostname in LOOPBACK_HOSTS
            if not (url.scheme == "https" and url.hostname) and not loopback:
                raise ValidationError("JWT: a JWKS URL is https:// (http:// only on loopback)", field="jwt_jwks")
        if self.secret is not None and len(self.secret) < MIN_JWT_SECRET_CHARS:
            raise ValidationError(f"JWT: an HS256 secret has at least {MIN_JWT_SECRET_CHARS} characters",
                                  field="jwt_secret")  # fmt: skip


@dataclass(frozen=True)
class AccessSettings:
    """Who may reach the server and how credentials behave (``access/``, ``api/hosts.py``)."""

    # Host names requests may name (the Host header, port aside); others are answered 400, so a
    # page on another site cannot reach a loopback server through DNS rebinding. "*": any.
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    # Keys are required even before any exists (``serve`` on a non-loopback host sets it).
    require_keys: bool = False
    session_seconds: float = 8 * 3600.0  # a dashboard session ends this long after login
    failure_limit: int = 20  # authentication failures from one address within the window...
    failure_window_seconds: float = 60.0  # ... before it is answered 429 until the window ends
    key_cache_seconds: float = 5.0  # a key revoked by another process stops working within this
    jwt: JwtSettings | None = None  # bearer JWTs accepted beside keys
    # Request rates (``200/s``; see ``access/limits.py``): of each credential without its own
    # (JWTs, the admin key, keys created without --rate; everyone on an open loopback server, by
    # address), and of each subject's feedback. None: no limit.
    rate: str | None = None
    subject_rate: str | None = None
    # Buckets shared by every replica through Redis (``redis://host:6379/0``); else per process.
    redis_url: str | None = field(default=None, repr=False)
    # Browser origins (``https://app.example.com``) whose pages may call the API (CORS); none by
    # default: no CORS header is ever sent then.
    cors_origins: tuple[str, ...] = ()
    # Audit (``access/audit.py``): this many authentication failures on a replica within one
    # failure window raise one ``auth_failure_burst`` event; at most ``audit_failure_events``
    # failures a window are written one by one (the rest are counted in /metrics).
    burst_threshold: int = 50
    audit_failure_events: int = 20

    def __post_init__(self) -> None:
        if self.failure_limit < 1 or self.failure_window_seconds <= 0 or self.session_seconds <= 0:
            raise ValidationError("access: failure_limit >= 1, failure_window_seconds and session_seconds > 0")
        if self.burst_threshold < 1 or self.audit_failure_events < 0:
            raise ValidationError("access: burst_threshold >= 1 and audit_failure_events >= 0", field="burst_threshold")


PREDICTION_LOG_MODES = ("buffered", "durable")
TRAINING_RUNNERS = ("process", "ray")


@dataclass(frozen=True)
class Settings:
    home: Path = DEFAULT_HOME
    database_url: str | None = None
    # Where artifacts live (``file:///abs/path`` or ``s3://bucket/prefix``, the endpoint, region and
    # credentials from the AWS variables); default: ``artifacts`` in the home.
    artifact_url: str | None = None
    api_key: str | None = None  # the single admin key (``--api-key``); scoped keys live in the database
    access: AccessSettings = field(default_factory=AccessSettings)
    limits: Limits = field(default_factory=Limits)
    # Seconds between checks of the routing table (champion changes made by other processes).
    routing_poll_seconds: float = 1.0
    # Seconds between retrain-trigger checks in the worker.
    trigger_poll_seconds: float = 2.0
    # Run training in a child process so a fit never stalls serving.
    isolate_training: bool = True
    # Where an isolated fit runs: "process" (a child process of this one) or "ray" (a Ray task on
    # the cluster at ``ray_address``, asking for ``ray_num_cpus``: ``training/ray_runner.py``).
    training_runner: str = "process"
    ray_address: str | None = None  # None: Ray's default (RAY_ADDRESS, else a local one-node Ray)
    ray_num_cpus: float = 1.0
    # Jobs running at once across every worker sharing the database (each fit takes a core).
    max_running_jobs: int = 2
    # Seconds between online-accuracy checks (alarms, Prometheus gauges) in the worker.
    performance_poll_seconds: float = 10.0
    # A running job is its worker's for this long after each heartbeat; past it, any worker
    # reclaims the job (queued again or failed: see the model's policy.retrain_retries).
    job_lease_seconds: float = 30.0
    # Seconds between a worker's lease renewals (and its checks for expired leases).
    job_heartbeat_seconds: float = 5.0
    # "buffered": a prediction is answered at once and logged within ~0.1 s (a killed process
    # loses that window; see the README's Reliability section). "durable": answered only once
    # its row is committed (group-committed, like feedback).
    prediction_log: str = "buffered"
    # Every database statement gives up after this long (PostgreSQL statement_timeout, SQLite
    # busy timeout), so a stalled database fails requests visibly instead of hanging them.
    statement_timeout_seconds: float = 15.0
    # /ready answers 503 once a database check or a hot-path write has hung this long.
    ready_stall_seconds: float = 5.0
    # The probe port's /health (``learnloop serve --probe-port``) answers 503 once the event loop
    # has not run for this long: a wedged loop is not alive, however fast the probe answers.
    live_stall_seconds: float = 10.0
    # A graceful stop ends within about this long, cancelling a query still running.
    shutdown_timeout_seconds: float = 10.0
    generation: GenerationSettings = field(default_factory=GenerationSettings)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.job_lease_seconds) and 0 < self.job_heartbeat_seconds <= self.job_lease_seconds / 2):
            raise ValidationError(
                f"job_heartbeat_seconds ({self.job_heartbeat_seconds}) must be > 0 and at most half of "
                f"job_lease_seconds ({self.job_lease_seconds}), so that one late heartbeat never loses a lease",
                field="job_heartbeat_seconds",
            )
        if self.training_runner not in TRAINING_RUNNERS:
            runners = " or ".join(TRAINING_RUNNERS)
            raise ValidationError(
                f"training_runner must be {runners}, not {self.training_runner!r}", field="training_runner"
            )
        if not (math.isfinite(self.ray_num_cpus) and self.ray_num_cpus > 0):
            raise ValidationError("ray_num_cpus must be a positive number of CPUs", field="ray_num_cpus")
        if self.prediction_log not in PREDICTION_LOG_MODES:
            modes = " or ".join(PREDICTION_LOG_MODES)
            wrong = self.prediction_log
            raise ValidationError(f"prediction_log must be {modes}, not {wrong!r}", field="prediction_log")
        for name in (
            "statement_timeout_seconds",
            "ready_stall_seconds",
            "live_stall_seconds",
            "shutdown_timeout_seconds",
        ):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValidationError(f"{name} must be a positive number of seconds", field=name)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'learnloop.db').resolve()}"

    @property
    def home_artifacts_dir(self) -> Path:
        """The home's own artifact directory: the default store, and where rows written
        before artifact keys point (the migration to keys strips it)."""
        return (self.home / "artifacts").resolve()

    @property
    def bases_dir(self) -> Path:
        """Where this home keeps its converted LLM bases (one copy each, made on first use)."""
        return (self.home / "bases").resolve()

    @property
    def artifact_cache_dir(self) -> Path:
        """Where this home keeps the directories a remote store (``s3://``) downloads, verified."""
        return (self.home / "cache" / "artifacts").resolve()

    @property
    def resolved_artifact_url(self) -> str:
        return self.artifact_url or self.home_artifacts_dir.as_uri()

    def home_exists(self) -> bool:
        """Whether a learnloop home is here: the home directory, and the SQLite database file when
        the database is SQLite (the home's own or one named by URL). Read commands check this
        before opening anything, so a mistyped ``--home`` never creates one."""
        if not self.home.is_dir():
            return False
        url = self.resolved_database_url
        if url.startswith("sqlite:///"):
            return Path(url.removeprefix("sqlite:///")).is_file()
        return True

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = dict(os.environ if environ is None else environ)
        base = cls(
            home=Path(env.get("LEARNLOOP_HOME", str(DEFAULT_HOME))),
            database_url=env.get("LEARNLOOP_DATABASE_URL") or None,
            artifact_url=env.get("LEARNLOOP_ARTIFACT_URL") or None,
            api_key=read_api_key(env),
            access=AccessSettings(
                allowed_hosts=_hosts(env.get("LEARNLOOP_ALLOWED_HOSTS")),
                jwt=jwt_from_env(env),
                rate=env.get("LEARNLOOP_RATE_LIMIT") or None,
                subject_rate=env.get("LEARNLOOP_SUBJECT_RATE") or None,
                redis_url=env.get("LEARNLOOP_REDIS_URL") or None,
                cors_origins=cors_origins(env.get("LEARNLOOP_CORS_ORIGINS")),
                burst_threshold=_count(env, "LEARNLOOP_AUTH_BURST_THRESHOLD", AccessSettings.burst_threshold),
            ),
            job_lease_seconds=_seconds(env, "LEARNLOOP_JOB_LEASE_SECONDS", cls.job_lease_seconds),
            job_heartbeat_seconds=_seconds(env, "LEARNLOOP_JOB_HEARTBEAT_SECONDS", cls.job_heartbeat_seconds),
            prediction_log=env.get("LEARNLOOP_PREDICTION_LOG") or "buffered",
            training_runner=env.get("LEARNLOOP_TRAINING_RUNNER") or "process",
            ray_address=env.get("LEARNLOOP_RAY_ADDRESS") or None,
            ray_num_cpus=_cpus(env, "LEARNLOOP_RAY_NUM_CPUS", cls.ray_num_cpus),
            statement_timeout_seconds=_seconds(env, "LEARNLOOP_STATEMENT_TIMEOUT", cls.statement_timeout_seconds),
            generation=GenerationSettings(
                threads=_count(env, "LEARNLOOP_GENERATION_THREADS", 1),
                train_threads=_count(env, "LEARNLOOP_TRAINING_THREADS", 1),
                max_batch=_count(env, "LEARNLOOP_GENERATION_MAX_BATCH", GenerationSettings.max_batch),
            ),
            limits=_limits(env),
        )
        return base.with_overrides(**overrides)


def _limits(env: dict[str, str]) -> Limits:
    """``LEARNLOOP_MAX_BODY_BYTES``: the largest request body (413 beyond, refused unread); the
    bytes of all bodies held at once grow with it when it is past their default."""
    raw = env.get("LEARNLOOP_MAX_BODY_BYTES")
    if not raw:
        return Limits()
    try:
        size = int(raw)
    except ValueError:
        raise ValidationError(
            f"LEARNLOOP_MAX_BODY_BYTES must be a number of bytes, got {raw!r}", field="LEARNLOOP_MAX_BODY_BYTES"
        ) from None
    if size < 1024:
        raise ValidationError(
            f"LEARNLOOP_MAX_BODY_BYTES must be 1024 or more, got {size}", field="LEARNLOOP_MAX_BODY_BYTES"
        )
    return Limits(max_body_bytes=size, max_body_bytes_in_flight=max(size, Limits.max_body_bytes_in_flight))


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    return _number(env, name, default, float, "a number of seconds")


def _cpus(env: dict[str, str], name: str, default: float) -> float:
    return _number(env, name, default, float, "a number of CPUs")


def _count(env: dict[str, str], name: str, default: int) -> int:
    return _number(env, name, default, int, "a whole number")


def _number(env: dict[str, str], name: str, default: N, parse: Callable[[str], N], what: str) -> N:
    """``name`` from the environment, parsed; ``default`` when unset or empty."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ValidationError(f"{name} must be {what}, got {raw!r}", field=name) from None


def read_api_key(env: dict[str, str]) -> str | None:
    """The admin key from ``LEARNLOOP_API_KEY``, else from the file ``LEARNLOOP_API_KEY_FILE``
    names (either keeps it out of the process list, unlike ``--api-key``)."""
    if env.get("LEARNLOOP_API_KEY"):
        return env["LEARNLOOP_API_KEY"]
    path = env.get("LEARNLOOP_API_KEY_FILE")
    return key_from_file(Path(path)) if path else None


def key_from_file(path: Path) -> str:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValidationError(f"cannot read the API key file {path}: {exc.strerror}", field="api_key_file") from None
    if not key:
        raise ValidationError(f"the API key file {path} is empty", field="api_key_file")
    return key


def jwt_from_env(env: dict[str, str]) -> JwtSettings | None:
    """JWT settings from ``LEARNLOOP_JWT_*`` (``serve --jwt-*`` names the same variables); None
    without an issuer. The secret comes from ``LEARNLOOP_JWT_SECRET`` or a file, never argv."""
    if not env.get("LEARNLOOP_JWT_ISSUER"):
        return None

    def text(name: str) -> str | None:
        path = env.get(name)
        if not path:
            return None
        try:
            return Path(path).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ValidationError(f"cannot read {name} ({path}): {exc.strerror}", field=name) from None

    jwks = env.get("LEARNLOOP_JWT_JWKS_FILE", "")
    remote = jwks.startswith(("https://", "http://"))  # a URL, fetched when a token needs a key
    return JwtSettings(
        issuer=env["LEARNLOOP_JWT_ISSUER"],
        audience=env.get("LEARNLOOP_JWT_AUDIENCE", ""),
        secret=env.get("LEARNLOOP_JWT_SECRET") or text("LEARNLOOP_JWT_SECRET_FILE"),
        public_key=text("LEARNLOOP_JWT_PUBLIC_KEY_FILE"),
        jwks=None if remote else text("LEARNLOOP_JWT_JWKS_FILE"),
        jwks_url=jwks if remote else None,
        scope_claim=env.get("LEARNLOOP_JWT_SCOPE_CLAIM") or "scope",
        models_claim=env.get("LEARNLOOP_JWT_MODELS_CLAIM") or None,
    )


def cors_origins(raw: str | Iterable[str] | None) -> tuple[str, ...]:
    """Origins from ``--cors-origin`` (repeatable) or ``LEARNLOOP_CORS_ORIGINS`` (comma-separated):
    ``scheme://host[:port]``, as a browser sends them in ``Origin`` (no path, no trailing slash)."""
    items = [raw] if isinstance(raw, str) else list(raw or [])
    origins = [o.strip().rstrip("/") for item in items for o in item.split(",") if o.strip()]
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[^/\s?#]+", origin):
            raise ValidationError(
                f"a CORS origin is scheme://host[:port] (e.g. https://app.example.com), not {origin!r}",
                field="cors_origin",
            )
    return tuple(dict.fromkeys(origins))


def _hosts(raw: str | None) -> tuple[str, ...]:
    """Comma-separated host names (``LEARNLOOP_ALLOWED_HOSTS``); the loopback names when unset."""
    hosts = tuple(h.strip().lower() for h in (raw or "").split(",") if h.strip())
    return hosts or LOOPBACK_HOSTS
