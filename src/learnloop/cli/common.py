"""Options and plumbing shared by the CLI commands."""

from __future__ import annotations

import getpass
import json
import shlex
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from learnloop.artifacts import open_store
from learnloop.config import DEFAULT_HOME, Settings
from learnloop.domain import SERVER_TRAIL
from learnloop.errors import LearnloopError

if TYPE_CHECKING:  # the services (and the libraries under them) load when a command opens them
    from learnloop.services import Services

console = Console()
err_console = Console(stderr=True)


def _default_home() -> Path:
    return DEFAULT_HOME


# Eager: read before ``--model``, whose default (the only model) is looked up in this home.
HomeOpt = Annotated[
    Path,
    typer.Option(
        "--home",
        envvar="LEARNLOOP_HOME",
        default_factory=_default_home,
        show_default=f"$LEARNLOOP_HOME, else ./{DEFAULT_HOME}",
        is_eager=True,
        help="learnloop home directory (database, artifacts).",
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="LEARNLOOP_DATABASE_URL",
        is_eager=True,
        help="SQLAlchemy URL; default: SQLite in the home.",
    ),
]
ArtifactOpt = Annotated[
    str | None,
    typer.Option(
        "--artifact-url",
        "--artifacts",
        envvar="LEARNLOOP_ARTIFACT_URL",
        help="Artifact store URL (file:///abs/path, or s3://bucket/prefix with the AWS variables); "
        "default: artifacts/ in the home.",
    ),
]


def only_model(names: list[str], home: Path) -> str:
    """The model a command works on when ``--model`` is not given: the home's only one."""
    if len(names) == 1:
        return names[0]
    if not names:
        fail(f"no model in {home} yet; create one with learnloop init --model NAME --data FILE")
    fail(f"{home} holds {len(names)} models ({', '.join(sorted(names))}); choose one with --model")


def _no_model() -> str:
    return ""


def _model_or_the_only_one(ctx: typer.Context, model: str) -> str:
    """``--model`` as given, else the only model of the home (and database) the command was
    given: those options are eager, read before this one."""
    if model:
        return model
    if ctx.params.get("audit"):  # ``events --audit``: the server's own trail
        return SERVER_TRAIL
    settings = settings_for(ctx.params.get("home") or DEFAULT_HOME, ctx.params.get("database_url"))
    with open_services(settings) as services:
        names = [m.name for m in services.registry.list_models()]
    return only_model(names, settings.home)


ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        default_factory=_no_model,
        callback=_model_or_the_only_one,
        show_default="the home's only model",
        help="Model name.",
    ),
]
NewModelOpt = Annotated[str, typer.Option("--model", "-m", help="Name of the model.")]  # no default: names one


def settings_for(home: Path, database_url: str | None, **overrides: object) -> Settings:
    return Settings.from_env().with_overrides(home=home, database_url=database_url, **overrides)


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user database entry (containers)
        return "cli"


def fail(message: str, code: int = 1) -> NoReturn:
    # one line, however long; the message is text, not markup ("pip install 'learnloop[llm]'")
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def require_home(settings: Settings) -> None:
    """A command that works on an existing home stops here, creating nothing, if there is none."""
    if not settings.home_exists():
        fail(f"no learnloop home at {settings.home}; create one with learnloop init")


@contextmanager
def open_services(settings: Settings, *, create: bool = False) -> Iterator[Services]:
    """Services for one CLI command; domain errors become a clear message and exit 1. Without
    ``create``, a home must exist already (a mistyped ``--home`` is an error, not a new home)."""
    from sqlalchemy.exc import SQLAlchemyError

    from learnloop.services import build_services

    services = None
    try:
        open_store(settings.resolved_artifact_url)  # a store learnloop cannot open is the first thing to say
        if not create:
            require_home(settings)
        services = build_services(settings)
        yield services
    except LearnloopError as exc:
        fail(exc.message)
    except SQLAlchemyError as exc:
        fail(f"database error: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    finally:
        if services is not None:
            services.close()


def write_file(path: Path, data: bytes) -> None:
    """Write a command's output file; an unwritable path is one clear line, not a traceback."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def is_tty() -> bool:
    return sys.stdout.isatty()


def parse_assignments(items: list[str], option: str = "--set") -> dict[str, Any]:
    """``KEY=VALUE`` options into a dict; a value is read as JSON when it parses, else as text."""
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            fail(f"{option} takes KEY=VALUE, got {item!r}")
        try:
            changes[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            changes[key.strip()] = raw
    return changes


def learnloop_command() -> tuple[str, str | None]:
    """How to run ``learnloop`` from a new shell: ``learnloop`` when that is the one on the PATH,
    else the console script beside this interpreter (a virtual environment's ``bin``), with the
    line that activates the environment when it has one."""
    here = Path(sys.executable).parent
    script = here / "learnloop"
    on_path = shutil.which("learnloop")
    if on_path is not None and (not script.exists() or Path(on_path).resolve() == script.resolve()):
        return "learnloop", None
    activate = here / "activate"
    command = shlex.quote(str(script)) if script.exists() else f"{shlex.quote(sys.executable)} -m learnloop"
    return command, (f"source {shlex.quote(str(activate))}" if activate.exists() else None)


def print_how_to_run(home: Path, *commands: str) -> None:
    """The lines that run ``learnloop`` ``commands`` on ``home`` from another terminal, exactly."""
    command, activate = learnloop_command()
    lines = [f"export LEARNLOOP_HOME={shlex.quote(str(home.resolve()))}"]
    if activate is not None:
        lines.append(f"{activate}   # or run {command} in full")
        command = "learnloop"
    lines += [f"{command} {line}" for line in commands]
    console.print(
        "Look at the model from another terminal:\n" + "\n".join(f"  {line}" for line in lines),
        soft_wrap=True,
        markup=False,
    )
