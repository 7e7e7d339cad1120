"""Shared fixtures: real databases (SQLite file, fresh PostgreSQL database per test), services
built by the composition root, models trained on the shipped UCI data, and real server and CLI
subprocesses."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from learnloop.clock import Clock
from learnloop.config import Settings
from learnloop.curation import split_golden
from learnloop.datasets.readers import read_labelled
from learnloop.datasets.shipped import uci_sentiment_path
from learnloop.domain import Job, JobStatus, ModelVersion, VersionStatus
from learnloop.families import get_family
from learnloop.families.manifest import save_predictor
from learnloop.policy import Policy
from learnloop.services import Services, build_services
from learnloop.store.db import Database
from learnloop.store.migrate import upgrade

PG_ENV = "LEARNLOOP_TEST_DATABASE_URL"
SERVER_START_TIMEOUT = 120.0  # a bound for a hang; a loaded CI machine has taken 45 s to start one
SERVER_STOP_GRACE = 10.0


# -- data ------------------------------------------------------------------------------------


def uci_rows(domain: str) -> list[tuple[str, str]]:
    """(text, label) rows of a shipped UCI sentiment file, labels "0"/"1"."""
    data = read_labelled(uci_sentiment_path(domain), text_column="0", label_column="1", header=False)
    return list(zip(data.texts, data.labels, strict=True))


@pytest.fixture(autouse=True)
def _wide_cli_consoles(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process CLI runs (``CliRunner``) print as wide as the subprocess runs (COLUMNS=250).
    ``CliRunner(env={"COLUMNS": ...})`` reaches no console: learnloop's are made once, when
    ``learnloop.cli.common`` is first imported, so their width hung on which test came first."""
    common = sys.modules.get("learnloop.cli.common")
    if common is not None:
        monkeypatch.setattr(common.console, "width", 250)
        monkeypatch.setattr(common.err_console, "width", 250)


@pytest.fixture(scope="session")
def shipped_rows() -> Callable[[str], list[tuple[str, str]]]:
    cache: dict[str, list[tuple[str, str]]] = {}

    def rows(domain: str) -> list[tuple[str, str]]:
        if domain not in cache:
            cache[domain] = uci_rows(domain)
        return list(cache[domain])

    return rows


# -- a tiny causal LM (the LLM path) -----------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama model + byte-level BPE tokenizer with a chat template, built once per
    session (about a second; ``tests/llm_fixtures.py``). Treat it as read-only."""
    from llm_fixtures import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama") / "base")


# -- databases -------------------------------------------------------------------------------


def _postgres_server_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{PG_ENV} is not set but CI=true: PostgreSQL tests must run in CI, never skip")
        pytest.skip(f"{PG_ENV} is not set (scripts/test sets it); PostgreSQL tests skipped")
    return url


def _pg_admin(server_url: str) -> Any:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(server_url)
    return psycopg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password,
        dbname=u.database or "postgres",
        autocommit=True,
    )


def _migrate(url: str) -> None:
    db = Database(url)
    try:
        upgrade(db)
    finally:
        db.dispose()


# Databases migrated to the newest revision once per test process, copied for each test that
# asks for one: what a fresh database holds after its first migration, at a fraction of the
# cost (PostgreSQL: CREATE ... TEMPLATE 0.1 s where migrating took 0.2-0.3 s more; SQLite: a
# page copy instead of 0.1 s). The migrations themselves: tests/integration/test_migrations.py.
_templates: dict[str, str] = {}


def _postgres_template(server_url: str) -> str:
    name = _templates.get(server_url)
    if name is None:
        name = f"ll_template_{uuid.uuid4().hex}"
        with _pg_admin(server_url) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        atexit.register(_drop_postgres_database, server_url, name)
        _migrate(make_url(server_url).set(database=name).render_as_string(hide_password=False))
        _templates[server_url] = name
    return name


def _sqlite_template() -> Path:
    path = _templates.get("sqlite")
    if path is None:
        folder = tempfile.mkdtemp(prefix="learnloop-template-")
        atexit.register(shutil.rmtree, folder, True)
        path = f"{folder}/ll.db"
        _migrate(f"sqlite:///{path}")
        _templates["sqlite"] = path
    return Path(path)


def _drop_postgres_database(server_url: str, name: str) -> None:
    with _pg_admin(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_postgres_database(*, migrated: bool = False) -> Iterator[str]:
    """CREATE a uniquely named database (``migrated``: at the newest revision; otherwise empty),
    yield its SQLAlchemy URL, DROP it (FORCE) after."""
    server_url = _postgres_server_url()
    name = f"ll_{uuid.uuid4().hex}"
    template = f' TEMPLATE "{_postgres_template(server_url)}"' if migrated else ""
    with _pg_admin(server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{template}')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_postgres_database(server_url, name)


@contextmanager
def fresh_database(kind: str, folder: Path, *, migrated: bool) -> Iterator[str]:
    """A new SQLite file in ``folder`` or PostgreSQL database (``migrated``: at the newest
    revision; otherwise empty), its URL; a PostgreSQL one is dropped after."""
    if kind == "sqlite":
        path = folder / "ll.db"
        if migrated:
            with closing(sqlite3.connect(_sqlite_template())) as source, closing(sqlite3.connect(path)) as copy:
                source.backup(copy)
        yield f"sqlite:///{path}"
        return
    with fresh_postgres_database(migrated=migrated) as url:
        yield url


DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES, ids=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh real database at the newest revision: a SQLite file, or a PostgreSQL database."""
    with fresh_database(request.param, tmp_path, migrated=True) as url:
        yield url


@pytest.fixture(params=DATABASES, ids=["sqlite", "postgres"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh real database with no tables (the tests of the migrations themselves)."""
    with fresh_database(request.param, tmp_path, migrated=False) as url:
        yield url


# An end-to-end test whose subject is a process, the CLI or the pages, not the database, runs on
# one database (the services beneath it run on both in tests/integration): the single-machine
# default, or PostgreSQL where the test is a fleet's (workers in processes of their own).
on_sqlite = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
on_postgres = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@contextmanager
def predictions_locked(database_url: str) -> Iterator[None]:
    """Another connection holds a lock on ``predictions`` (SQLite: the write lock of the whole
    file, as any writer there takes), released on exit."""
    if database_url.startswith("sqlite"):
        holder = sqlite3.connect(make_url(database_url).database or "", isolation_level=None, timeout=10)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("LOCK TABLE predictions IN ACCESS EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.rollback()
    finally:
        engine.dispose()


# -- services --------------------------------------------------------------------------------


def make_settings(home: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": home,
        "database_url": database_url,
        "isolate_training": False,
        "trigger_poll_seconds": 0.2,
        "routing_poll_seconds": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "home", database_url)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    try:
        yield built
    finally:
        built.close()


def asgi_get(services: Services, path: str) -> httpx.Response:
    """GET ``path`` from the app built on ``services``, in process (no server)."""
    import asyncio

    from learnloop.app import create_app

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.get(path)

    return asyncio.run(get())


@pytest.fixture
def services_factory(settings: Settings) -> Iterator[Callable[..., Services]]:
    """Build extra services on the same database (another clock, another process's view)."""
    built: list[Services] = []

    def make(*, clock: Clock | None = None, **overrides: Any) -> Services:
        s = build_services(
            Settings(**{**settings.__dict__, **overrides}) if overrides else settings,
            clock=clock,
        )
        built.append(s)
        return s

    yield make
    for s in reversed(built):
        s.close()


def create_model(
    services: Services,
    name: str = "m",
    *,
    domain: str = "yelp",
    policy: Policy | None = None,
    golden_fraction: float = 0.2,
    seed: int = 0,
    source: str | None = None,
    family: str = "tfidf-logreg",
) -> ModelVersion:
    """Create a model from a shipped UCI file and train its version 1 (the champion).

    ``source`` defaults to a short label: a long file path breaks PostgreSQL (see
    ``test_model_from_a_data_file_with_a_long_path``)."""
    rows = uci_rows(domain)
    train, golden = split_golden(rows, golden_fraction, seed)
    services.registry.create_model(
        name=name,
        labels=sorted({label for _, label in rows}),
        family=family,
        params={},
        policy=policy or Policy(),
        train=train,
        golden=golden,
        source=source or f"uci:{domain}",
    )
    return services.training.bootstrap(name)


@pytest.fixture(scope="session")
def story_home(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A classifier's four days (``tests/story_scenario.py``), told once per session: a
    ``StoryHome`` to read, never to change."""
    from story_scenario import build_story_home

    return build_story_home(tmp_path_factory.mktemp("story"))


@pytest.fixture
def make_model() -> Callable[..., ModelVersion]:
    return create_model


def register_version(
    services: Services,
    name: str,
    rows: list[tuple[str, str]],
    *,
    note: str,
    actor: str = "test",
    verdict: dict[str, Any] | None = None,
    parent_version: int | None = None,
) -> ModelVersion:
    """Train a version on ``rows`` outside the loop (no gate) and register it as a candidate:
    a deliberately broken or better challenger for rollout tests."""
    model = services.registry.get_model(name)
    family = get_family(model.family)
    predictor = family.fit(
        [t for t, _ in rows], [lab for _, lab in rows], label_set=list(model.labels), params=model.params
    )
    uri = save_predictor(services.store, f"models/{name}/test-{uuid.uuid4().hex[:8]}", model.family, predictor, {})
    return register_artifact(
        services, name, uri, note=note, actor=actor, verdict=verdict, parent_version=parent_version
    )


def register_artifact(
    services: Services,
    name: str,
    artifact_uri: str,
    *,
    note: str,
    actor: str = "test",
    verdict: dict[str, Any] | None = None,
    parent_version: int | None = None,
) -> ModelVersion:
    """Register an artifact already in the store as a candidate version of ``name`` (no gate)."""
    model = services.registry.get_model(name)
    return services.registry.register(
        ModelVersion(
            model=name,
            version=0,
            status=VersionStatus.CANDIDATE,
            family=model.family,
            params=model.params,
            snapshot_hash=None,
            parent_version=parent_version,
            code_version="test",
            metrics={},
            verdict=verdict,
            artifact_uri=artifact_uri,
            created_at=services.clock.now(),
            status_reason=note,
        ),
        actor=actor,
    )


def wait_for(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# -- subprocesses: the CLI and a live server ---------------------------------------------------


def init_home(home: Path, database_url: str, policy: Policy | None = None) -> None:
    """A home with model "m" at version 1, ready for a server to start on."""
    services = build_services(make_settings(home, database_url))
    try:
        create_model(services, "m", policy=policy)
    finally:
        services.close()


# A retrain that lasts until it is killed: a search of many trials (a budget it never reaches),
# so a test's kill lands mid-fit whatever the machine's load; QUICK undoes it.
LASTING_RETRAIN = {"search_families": "tfidf-logreg", "search_budget_seconds": 3600, "search_trials": 10_000}
QUICK_RETRAIN = {"search_families": "", "search_budget_seconds": 0}


def wait_until_searching(http: httpx.Client, job_id: str, server: LiveServer) -> None:
    """Until the job runs a ``LASTING_RETRAIN``'s search (fails at once if it ended first)."""

    def searching() -> bool:
        job = http.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] in ("queued", "running"), f"{job}\n{server.log_tail()}"
        return job["status"] == "running" and "candidate" in (job["message"] or "")

    wait_for(searching, timeout=60, interval=0.02, what="the retrain's search to start")


def wait_until_worker_searches(services: Services, job_id: str, worker: LiveProcess, timeout: float = 60) -> Job:
    """Until ``worker`` runs the job's ``LASTING_RETRAIN`` search in its training process (fails
    at once if the job ended first); the job then."""

    def searching() -> Job | None:
        job = services.jobs.get(job_id)
        assert job.status in (JobStatus.QUEUED, JobStatus.RUNNING), f"{job}\n{worker.log_tail()}"
        fitting = job.status == JobStatus.RUNNING and "candidate" in (job.message or "")
        return job if fitting and descendants(worker.process.pid) else None

    found: Job = wait_for(searching, timeout=timeout, interval=0.05, what="the worker's search to start")
    return found


def change_policy(home: Path, database_url: str, changes: dict[str, Any]) -> None:
    """Change model "m"'s policy in the home's database (no server running on it)."""
    services = build_services(make_settings(home, database_url))
    try:
        services.registry.update_policy("m", changes, actor="test")
    finally:
        services.close()


def descendants(pid: int) -> list[int]:
    """Child process ids (recursively), from /proc (Linux)."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids = [int(k) for k in children.read_text().split()]
        except OSError:
            continue
        for kid in kids:
            found += [kid, *descendants(kid)]
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def kill_leftovers(pids: list[int]) -> None:
    for pid in pids:  # processes of a server this test started
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def learnloop_executable() -> str:
    beside = Path(sys.executable).parent / "learnloop"
    if beside.is_file():
        return str(beside)
    found = shutil.which("learnloop")
    if found is None:
        pytest.fail("the learnloop console script is not installed (run scripts/bootstrap-venv)")
    return found


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNLOOP_")}
    env.update(
        {
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "COLUMNS": "250",
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def run_cli(
    *args: str | Path, timeout: float = 120, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``learnloop ARGS`` as a real subprocess; a non-zero exit fails the test when ``check``."""
    proc = subprocess.run(
        [learnloop_executable(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=subprocess_env(),
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"learnloop {' '.join(map(str, args))} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveProcess:
    """A learnloop subprocess with its log; ``stop`` sends ``STOP_SIGNAL`` (its graceful stop),
    then SIGKILL if it has not exited within the grace period."""

    STOP_SIGNAL: ClassVar[signal.Signals] = signal.SIGTERM
    process: subprocess.Popen[bytes]
    log_path: Path
    # Started under a wrapper (``unshare ...``): the stop signal goes to the wrapper's child,
    # as a container runtime signals its PID 1 (unshare itself ignores SIGTERM while it waits).
    wrapped: bool = False

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(SERVER_STOP_GRACE)

    def stop(self) -> None:
        if self.process.poll() is None:
            children = descendants(self.process.pid) if self.wrapped else []
            if children:
                os.kill(children[0], self.STOP_SIGNAL)
            else:
                self.process.send_signal(self.STOP_SIGNAL)
            try:
                self.process.wait(SERVER_STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class LiveServer(LiveProcess):
    """A ``learnloop serve`` subprocess (SIGTERM: the graceful path that flushes the log)."""

    url: str = ""
    home: Path = Path()
    database_url: str = ""

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 30.0), **kwargs)


@dataclass
class ServerLauncher:
    """Starts ``learnloop serve`` subprocesses on 127.0.0.1 and stops every one it started."""

    log_dir: Path
    servers: list[LiveServer] = field(default_factory=list)

    def start(
        self,
        home: Path,
        database_url: str,
        *extra_args: str,
        wrap: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> LiveServer:
        """Start a server; ``wrap`` prefixes the command (e.g. ``unshare ...``), ``env`` adds
        variables (e.g. ``LEARNLOOP_JOB_LEASE_SECONDS``)."""
        port = free_port()
        log_path = self.log_dir / f"server-{len(self.servers)}-{port}.log"
        args = [
            *wrap,
            learnloop_executable(),
            "serve",
            "--home",
            str(home),
            "--database-url",
            database_url,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            *extra_args,
        ]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=subprocess_env(**(env or {}))
            )
        server = LiveServer(
            process, log_path, bool(wrap), url=f"http://127.0.0.1:{port}", home=home, database_url=database_url
        )
        self.servers.append(server)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"learnloop serve exited with {process.returncode} before answering:\n{server.log_tail()}")
            try:
                if httpx.get(f"{server.url}/health", timeout=2.0).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                server.stop()
                pytest.fail(
                    f"learnloop serve did not answer /health within {SERVER_START_TIMEOUT}s:\n{server.log_tail()}"
                )
            time.sleep(0.1)

    def stop_all(self) -> None:
        for server in reversed(self.servers):
            server.stop()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[ServerLauncher]:
    """``live_server.start(home, database_url, *args)``; every server started is stopped at teardown."""
    log_dir = tmp_path / "server-logs"
    log_dir.mkdir()
    launcher = ServerLauncher(log_dir)
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.fixture(scope="module")
def module_server_launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerLauncher]:
    launcher = ServerLauncher(tmp_path_factory.mktemp("server-logs"))
    try:
        yield launcher
    finally:
        launcher.stop_all()


@dataclass
class LiveWorker(LiveProcess):
    """A ``learnloop worker`` subprocess (SIGINT: its Ctrl-C)."""

    STOP_SIGNAL: ClassVar[signal.Signals] = signal.SIGINT


@dataclass
class WorkerLauncher:
    """Starts ``learnloop worker`` subprocesses and stops every one it started."""

    log_dir: Path
    workers: list[LiveWorker] = field(default_factory=list)

    def start(
        self, home: Path, database_url: str, *, env: dict[str, str] | None = None, background: bool = False
    ) -> LiveWorker:
        """``background``: started as a shell starts ``learnloop worker &``, SIGINT ignored."""
        log_path = self.log_dir / f"worker-{len(self.workers)}.log"
        args = [learnloop_executable(), "worker", "--home", str(home), "--database-url", database_url]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=subprocess_env(**(env or {})),
                preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if background else None,
            )
        worker = LiveWorker(process, log_path)
        self.workers.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in reversed(self.workers):
            worker.stop()


@pytest.fixture
def live_worker(tmp_path: Path) -> Iterator[WorkerLauncher]:
    """``live_worker.start(home, database_url)``; every worker started is stopped at teardown."""
    log_dir = tmp_path / "worker-logs"
    log_dir.mkdir()
    launcher = WorkerLauncher(log_dir)
    try:
        yield launcher
    finally:
        launcher.stop_all()


# -- a real browser ----------------------------------------------------------------------------

DEFAULT_CHROMIUM = "/usr/bin/chromium"


def unavailable(reason: str) -> None:
    """Skip for want of a tool, except in CI, where every test must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true: the test must run, never skip (scripts/test sets it up)")
    pytest.skip(f"{reason} (scripts/test installs it: scripts/bootstrap-venv, scripts/ensure-chromium)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium (``LEARNLOOP_CHROMIUM``), headless, driven by Playwright."""
    path = os.environ.get("LEARNLOOP_CHROMIUM") or DEFAULT_CHROMIUM
    if not os.access(path, os.X_OK):
        unavailable(f"no Chromium at {path}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, headless=True)
        try:
            yield launched
        finally:
            launched.close()


# -- S3-compatible storage (a moto server process) -------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint of a moto S3 server started once per test session (per xdist worker)."""
    from s3_server import moto_server

    with moto_server(tmp_path_factory.mktemp("s3")) as endpoint:
        yield endpoint


@pytest.fixture
def s3_url(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """``s3://<fresh bucket>/learnloop``, with the AWS variables pointing at the test server for
    this test (and the processes it starts) and a download cache of the test's own."""
    from s3_server import aws_environment, new_bucket

    for name, value in aws_environment(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LEARNLOOP_ARTIFACT_CACHE", str(tmp_path / "artifact-cache"))
    return f"s3://{new_bucket(s3_endpoint)}/learnloop"
