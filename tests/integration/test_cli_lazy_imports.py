"""A ``learnloop`` command pays only for what it uses: ``--help`` loads no database, numerical,
machine-learning, web or LLM library, and a command that only reads a home (``status``,
``versions``) opens the services without Alembic (nothing to migrate), scipy.stats,
scikit-learn, the web app or torch. Each
command runs in a fresh interpreter, as the console script runs it, and reports ``sys.modules``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import init_home, subprocess_env

SCRIPT = textwrap.dedent(
    """
    import sys

    sys.argv = ["learnloop", *sys.argv[1:]]
    from learnloop.cli.main import main

    try:
        main()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    print(f"EXIT={code}")
    print("LOADED=" + ",".join(sorted(name for name in sys.modules if "." not in name)))
    """
)

ML_AND_WEB = {"scipy", "sklearn", "pandas", "joblib", "fastapi", "starlette", "uvicorn", "jinja2", "matplotlib"}
LLM = {"torch", "transformers", "peft", "trl", "tokenizers", "safetensors"}


def loaded_by(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(),
        stdin=subprocess.DEVNULL,
    )
    lines = dict(line.split("=", 1) for line in proc.stdout.splitlines() if line.startswith(("EXIT=", "LOADED=")))
    assert lines.get("EXIT") == "0", proc.stdout + proc.stderr
    return set(lines["LOADED"].split(","))


def test_help_loads_no_database_statistics_ml_web_or_llm_library() -> None:
    loaded = loaded_by("--help")
    assert "typer" in loaded  # the probe sees what the command imported
    # numpy came through the families' and tasks' registries (the option defaults of init) and
    # the replay package (the demo's options): the defaults are keys in learnloop.domain now
    assert loaded & (ML_AND_WEB | LLM | {"sqlalchemy", "alembic", "pydantic", "numpy"}) == set()


@pytest.mark.parametrize(
    "command", [["status", "-m", "m"], ["versions", "-m", "m"], ["status"], ["models"], ["jobs", "list"]], ids=" ".join
)
def test_a_command_that_reads_a_home_loads_the_database_but_no_ml_web_or_llm_library(
    tmp_path: Path, command: list[str]
) -> None:
    """``status`` without ``--model`` looks the model up (the home's only one) just as cheaply."""
    home = tmp_path / "home"
    init_home(home, f"sqlite:///{home}/learnloop.db")
    loaded = loaded_by(*command, "--home", str(home), "--database-url", f"sqlite:///{home}/learnloop.db")
    assert "sqlalchemy" in loaded  # it did open the services
    assert loaded & (ML_AND_WEB | LLM) == set()
    assert "alembic" not in loaded  # the database is at the newest revision: nothing to migrate


def test_the_default_keys_kept_apart_from_the_registries_name_registered_plugins() -> None:
    from learnloop.domain import DEFAULT_FAMILY, DEFAULT_TASK
    from learnloop.families import FAMILIES
    from learnloop.tasks import TASKS

    assert DEFAULT_TASK in TASKS and DEFAULT_FAMILY in FAMILIES
    assert FAMILIES[DEFAULT_FAMILY].task == DEFAULT_TASK  # the default family serves the default task
