"""Options and plumbing shared by the CLI commands."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from learnloop.artifacts import open_store
from learnloop.config import Settings
from learnloop.errors import LearnloopError

if TYPE_CHECKING:  # the services (and the libraries under them) load when a command opens them
    from learnloop.services import Services

console = Console()
err_console = Console(stderr=True)

HomeOpt = Annotated[
    Path,
    typer.Option("--home", envvar="LEARNLOOP_HOME", help="learnloop home directory (database, artifacts)."),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="LEARNLOOP_DATABASE_URL",
        help="SQLAlchemy URL; default: SQLite in the home.",
    ),
]
ArtifactOpt = Annotated[
    str | None,
    typer.Option(
        "--artifact-url",
        envvar="LEARNLOOP_ARTIFACT_URL",
        help="Artifact store URL (file:///abs/path); default: artifacts/ in the home.",
    ),
]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model name.")]


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
