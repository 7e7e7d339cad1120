"""learnloop serve | worker | retrain | db."""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from learnloop.cli.common import (
    ArtifactOpt,
    DbOpt,
    HomeOpt,
    ModelOpt,
    actor,
    console,
    fail,
    open_services,
    settings_for,
)
from learnloop.config import (
    LOOPBACK_HOSTS,
    MIN_KEY_CHARS,
    AccessSettings,
    Settings,
    cors_origins,
    jwt_from_env,
    key_from_file,
)
from learnloop.domain import JobStatus, parse_rate
from learnloop.errors import LearnloopError


class PredictionLogMode(StrEnum):
    buffered = "buffered"
    durable = "durable"


class EventLoop(StrEnum):
    """The server's event loop. asyncio by default: overloaded, uvloop served most connections
    fast but starved a few (liveness probes among them) for 4-11 s; asyncio stayed fair
    (README, "Overload pushes back")."""

    asyncio = "asyncio"
    uvloop = "uvloop"
    auto = "auto"  # uvicorn's choice: uvloop when installed


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    home: HomeOpt,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="LEARNLOOP_API_KEY",
            help="The admin key (prefer LEARNLOOP_API_KEY or --api-key-file: the command line is visible to all).",
        ),
    ] = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option("--api-key-file", envvar="LEARNLOOP_API_KEY_FILE", help="Read the admin key from this file."),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            envvar="LEARNLOOP_ALLOWED_HOSTS",
            help="A host name clients use to reach this server, repeatable (default: the loopback names and --host).",
        ),
    ] = None,
    jwt_issuer: Annotated[
        str | None,
        typer.Option("--jwt-issuer", envvar="LEARNLOOP_JWT_ISSUER", help="Accept bearer JWTs from this issuer (iss)."),
    ] = None,
    jwt_audience: Annotated[
        str | None, typer.Option("--jwt-audience", envvar="LEARNLOOP_JWT_AUDIENCE", help="... for this audience (aud).")
    ] = None,
    jwt_secret_file: Annotated[
        Path | None,
        typer.Option(
            "--jwt-secret-file",
            envvar="LEARNLOOP_JWT_SECRET_FILE",
            help="Verify HS256 tokens with the secret in this file (or LEARNLOOP_JWT_SECRET; never in argv).",
        ),
    ] = None,
    jwt_public_key: Annotated[
        Path | None,
        typer.Option(
            "--jwt-public-key",
            envvar="LEARNLOOP_JWT_PUBLIC_KEY_FILE",
            help="Verify RS256 / ES256 tokens with this PEM public key.",
        ),
    ] = None,
    jwt_jwks: Annotated[
        str | None,
        typer.Option(
            "--jwt-jwks",
            envvar="LEARNLOOP_JWT_JWKS_FILE",
            help="... or with this JWKS file or https:// URL (keys by kid; a URL is fetched when a token needs it).",
        ),
    ] = None,
    jwt_scope_claim: Annotated[
        str, typer.Option("--jwt-scope-claim", envvar="LEARNLOOP_JWT_SCOPE_CLAIM", help="The claim holding scopes.")
    ] = "scope",
    jwt_models_claim: Annotated[
        str | None,
        typer.Option(
            "--jwt-models-claim",
            envvar="LEARNLOOP_JWT_MODELS_CLAIM",
            help="A claim limiting a token to some models (default: none; every model).",
        ),
    ] = None,
    rate_limit: Annotated[
        str | None,
        typer.Option(
            "--rate-limit",
            envvar="LEARNLOOP_RATE_LIMIT",
            help="Request rate of each key, token or admin key without its own: 200/s, 6000/m (default: none).",
        ),
    ] = None,
    subject_rate: Annotated[
        str | None,
        typer.Option(
            "--subject-rate", envvar="LEARNLOOP_SUBJECT_RATE", help="Feedback events per subject and model: 10/s."
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url",
            envvar="LEARNLOOP_REDIS_URL",
            help="Share rate limits between replicas through this Redis (redis://host:6379/0).",
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin",
            envvar="LEARNLOOP_CORS_ORIGINS",
            help="A browser origin whose pages may call the API (https://app.example.com), repeatable (default: none).",
        ),
    ] = None,
    auth_burst: Annotated[
        int | None,
        typer.Option(
            "--auth-burst",
            envvar="LEARNLOOP_AUTH_BURST_THRESHOLD",
            min=1,
            help="Failed authentications within a minute that raise an auth_failure_burst event (50).",
        ),
    ] = None,
    probe_port: Annotated[
        int | None,
        typer.Option(
            "--probe-port",
            envvar="LEARNLOOP_PROBE_PORT",
            min=1,
            max=65535,
            help="Also answer GET /health and /ready on this port, from a thread of their own: fast even "
            "when the API port is overloaded; /health answers 503 once the event loop stalls.",
        ),
    ] = None,
    worker: Annotated[bool, typer.Option("--worker/--no-worker", help="Run jobs in this process.")] = True,
    loop: Annotated[
        EventLoop,
        typer.Option(
            "--loop",
            help="Event loop: asyncio (fair to every connection when overloaded), uvloop (more requests/s, "
            "but starves some connections for seconds when overloaded) or auto (uvloop when installed).",
        ),
    ] = EventLoop.asyncio,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
    prediction_log: Annotated[
        PredictionLogMode | None,
        typer.Option(
            "--prediction-log",
            envvar="LEARNLOOP_PREDICTION_LOG",
            help="buffered: answer at once, log within ~0.1 s (default); durable: answer once the row is committed.",
        ),
    ] = None,
    prediction_queue_max: Annotated[
        int | None,
        typer.Option("--prediction-queue-max", min=1, help="Predictions buffered before answering 503 (50,000)."),
    ] = None,
    statement_timeout: Annotated[
        float | None,
        typer.Option("--statement-timeout", min=0.1, help="Seconds before any database statement gives up (15)."),
    ] = None,
) -> None:
    """Serve every model over HTTP, with an in-process worker.

    \b
    Examples:
      learnloop serve
      learnloop serve --home ./learnloop-home --port 8000 --api-key "$KEY"
    """
    import uvicorn

    from learnloop.app import create_app

    if api_key is None and api_key_file is not None:
        try:
            api_key = key_from_file(api_key_file)
        except LearnloopError as exc:
            fail(exc.message)
    jwt_options = {
        "LEARNLOOP_JWT_ISSUER": jwt_issuer,
        "LEARNLOOP_JWT_AUDIENCE": jwt_audience,
        "LEARNLOOP_JWT_SECRET_FILE": jwt_secret_file,
        "LEARNLOOP_JWT_PUBLIC_KEY_FILE": jwt_public_key,
        "LEARNLOOP_JWT_JWKS_FILE": jwt_jwks,
        "LEARNLOOP_JWT_SCOPE_CLAIM": jwt_scope_claim,
        "LEARNLOOP_JWT_MODELS_CLAIM": jwt_models_claim,
    }
    try:
        for rate in (rate_limit, subject_rate):
            if rate is not None:
                parse_rate(rate)
        jwt = jwt_from_env({**os.environ, **{k: str(v) for k, v in jwt_options.items() if v is not None}})
        origins = cors_origins(cors_origin)
    except LearnloopError as exc:
        fail(exc.message)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_for(
        home,
        database_url,
        artifact_url=artifact_url,
        api_key=api_key,
        prediction_log=prediction_log.value if prediction_log else None,
        statement_timeout_seconds=statement_timeout,
    )
    settings = replace(
        settings,
        access=replace(
            settings.access,
            jwt=jwt,
            rate=rate_limit,
            subject_rate=subject_rate,
            redis_url=redis_url,
            cors_origins=origins,
            burst_threshold=auth_burst or settings.access.burst_threshold,
        ),
    )
    settings = replace(settings, access=_access(settings, host, api_key, allowed_host))
    if prediction_queue_max is not None:
        settings = settings.with_overrides(limits=replace(settings.limits, prediction_queue_max=prediction_queue_max))
    sock = _bind(host, port)  # before anything else: a busy port is one clear line
    probe_sock = None
    if probe_port is not None:
        if probe_port == port:
            sock.close()
            fail(f"--probe-port must differ from --port ({port})")
        try:
            probe_sock = _bind(host, probe_port, option="--probe-port")
        except typer.Exit:
            sock.close()
            raise
    try:
        app = create_app(settings, start_worker=worker, freeze_gc=True, probe_socket=probe_sock)
    except LearnloopError as exc:  # a bad artifact URL, a database that will not migrate
        sock.close()
        if probe_sock is not None:
            probe_sock.close()
        fail(exc.message)
    config = uvicorn.Config(
        app,
        loop=loop.value,
        http="httptools",
        log_level=log_level,
        access_log=False,
        # Requests still open get half the stop budget; the lifespan's close gets the rest.
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_seconds / 2)),
    )
    shown = f"[{host}]" if ":" in host else host
    console.print(f"learnloop serving on http://{shown}:{port} (API docs at http://{shown}:{port}/docs)")
    if probe_port is not None:
        console.print(f"liveness and readiness also on http://{shown}:{probe_port}/health and /ready")
    uvicorn.Server(config).run(sockets=[sock])


def _access(settings: Settings, host: str, api_key: str | None, allowed: list[str] | None) -> AccessSettings:
    """Reachable from elsewhere: keys always required, and there must be some (the admin key,
    at least MIN_KEY_CHARS long, scoped keys in the database, or JWTs accepted)."""
    hosts = [h.strip().lower() for item in allowed or [] for h in item.split(",") if h.strip()]
    hosts = list(dict.fromkeys([*LOOPBACK_HOSTS, host.lower(), *hosts]))
    if _is_loopback(host):
        return replace(settings.access, allowed_hosts=tuple(hosts))
    if api_key is not None and len(api_key) < MIN_KEY_CHARS:
        fail(f"refusing a weak admin key on non-loopback host {host!r}: use at least {MIN_KEY_CHARS} random characters")
    from learnloop.access import keys_exist  # the database library, only now

    if api_key is None and settings.access.jwt is None and not keys_exist(settings.resolved_database_url):
        fail(
            f"refusing to serve on non-loopback host {host!r} without keys: create one "
            "(learnloop keys create --name NAME --scope ...), give an admin key (LEARNLOOP_API_KEY or "
            "--api-key-file) or accept JWTs (--jwt-issuer ...)"
        )
    return replace(settings.access, allowed_hosts=tuple(hosts), require_keys=True)


def _bind(host: str, port: int, *, option: str = "--port") -> socket.socket:
    """The listening socket, bound and listening, or a one-line error (port busy, address not here)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, as getaddrinfo names it for the servers asyncio makes itself: asyncio
    # turns Nagle's algorithm off (TCP_NODELAY) only on accepted sockets whose proto says TCP.
    # With proto 0 it stayed on, and a response's body, written after its headers, waited for
    # the client's delayed ACK: ~40 ms on every request of a keep-alive connection. The
    # listener's own TCP_NODELAY is inherited by what it accepts (the probe port's threads too).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a TIME_WAIT port is fine
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "the port is in use (another server still running?)" if exc.errno == errno.EADDRINUSE else exc.strerror
        fail(f"cannot listen on {host}:{port}: {reason}; choose another {option}")
    sock.set_inheritable(True)
    return sock


def worker(
    home: HomeOpt,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
    training_runner: Annotated[
        str | None,
        typer.Option(
            "--training-runner",
            envvar="LEARNLOOP_TRAINING_RUNNER",
            help="Where fits run: process (a child process, the default) or ray (Ray tasks).",
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            envvar="LEARNLOOP_RAY_ADDRESS",
            help="The Ray cluster for --training-runner ray (host:port); default: Ray's own (RAY_ADDRESS).",
        ),
    ] = None,
) -> None:
    """Run jobs (retrains) and retrain triggers in this process, beside API replicas.

    \b
    Examples:
      learnloop worker
      learnloop worker --training-runner ray --ray-address 10.0.0.5:6379
    """
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_for(
        home, database_url, artifact_url=artifact_url, training_runner=training_runner, ray_address=ray_address
    )
    # Ctrl-C, and the SIGTERM that process managers send, stop it gracefully. Set here, not
    # inherited: a shell ignores SIGINT for the commands it starts in the background, and
    # SIGTERM's default would end the process with its job left to the lease's expiry.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with open_services(settings, create=True) as services:
        console.print(f"worker {services.worker.name} running; Ctrl-C to stop")
        services.run_worker(until=stop)
    console.print("worker stopped")


def retrain(
    home: HomeOpt,
    model: ModelOpt,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Wait for the result (runs the job here if no worker takes it)."),
    ] = False,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
) -> None:
    """Queue a retrain of a model (refused while one is queued or running).

    \b
    Examples:
      learnloop retrain --wait          # run it here and print the gate's verdict
      learnloop retrain --model sentiment --reason "new labels from support"
    """
    with open_services(settings_for(home, database_url, artifact_url=artifact_url, isolate_training=False)) as services:
        job = services.jobs.enqueue(model, "retrain", requested_by=actor(), reason=reason or "requested from the CLI")
        console.print(f"queued retrain job {job.id}")
        if not wait:
            console.print("a running `learnloop serve` or `learnloop worker` will run it")
            return
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("waiting", total=1.0)
            while True:
                job = services.jobs.get(job.id)
                progress.update(task, completed=job.progress, description=job.message or job.status.value)
                if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
                    break
                if job.status == JobStatus.QUEUED and services.worker.run_once():
                    continue
                time.sleep(0.3)
        if job.status == JobStatus.CANCELLED:
            fail(f"retrain cancelled by {job.cancelled_by}: {job.cancel_reason}")
        if job.status != JobStatus.SUCCEEDED or job.result is None:
            fail(f"retrain {job.status.value}: {job.error}")
        result = job.result
        verdict = result["verdict"]
        colour = "green" if result["promoted"] else "yellow"
        outcome = "promoted" if result["promoted"] else verdict.get("decision", "rejected")
        summary = result.get("summary") or f"version {result['version']}: {outcome}"
        console.print(f"[{colour}]{escape(summary)}[/]", soft_wrap=True)
        for line in verdict.get("reasons", []):
            console.print(f"  - {escape(line)}")


db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(home: HomeOpt, database_url: DbOpt = None) -> None:
    """Apply schema migrations."""
    from learnloop.store.db import Database
    from learnloop.store.migrate import current_revision, upgrade

    settings = settings_for(home, database_url)
    db = Database(settings.resolved_database_url)
    upgrade(db, home_artifacts=settings.home_artifacts_dir)
    console.print(f"database at revision {current_revision(db)}")
    db.dispose()


@db_app.command("current")
def db_current(home: HomeOpt, database_url: DbOpt = None) -> None:
    """Show the schema revision."""
    from learnloop.store.db import Database
    from learnloop.store.migrate import current_revision, head_revision

    db = Database(settings_for(home, database_url).resolved_database_url)
    console.print(f"current: {current_revision(db)}; head: {head_revision(db)}")
    db.dispose()
