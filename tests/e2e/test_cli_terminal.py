"""The CLI as a newcomer uses it (real subprocesses on a real home): the shipped data's labels by
their names, ``predict`` and ``feedback`` from the terminal, the home and the model found without
options (or a clear line saying which to give), ``learnloop models``, a rejected retrain said as
such, with the deciding words first, in the job list, the status and the versions, and a job
named by the end of its id."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import learnloop_executable, run_cli, subprocess_env, uci_rows
from learnloop import __version__
from learnloop.cli.main import app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

NAMES = "0=negative,1=positive"


def write_tsv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{text}\t{label}\n" for text, label in rows))
    return path


def init_args(data: Path, model: str) -> list[str | Path]:
    return ["init", "--model", model, "--data", data, "--format", "tsv", "--no-header",
            "--text-column", "0", "--label-column", "1", "--label-names", NAMES]  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with one model, ``sentiment``, made from shipped Yelp rows coded 0/1 and named."""
    root = tmp_path_factory.mktemp("terminal")
    data = write_tsv(root / "yelp.tsv", uci_rows("yelp")[:300])
    created = run_cli(*init_args(data, "sentiment"), "--home", root / "home")
    assert "(2 labels: negative, positive)" in created.stdout
    return root / "home"


def learnloop(*args: str | Path, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """``learnloop ARGS`` with ``env`` (``LEARNLOOP_HOME``) and ``cwd`` as a user's shell has them."""
    return subprocess.run(
        [learnloop_executable(), *map(str, args)], capture_output=True, text=True, timeout=120,
        env=subprocess_env(**env), stdin=subprocess.DEVNULL, cwd=cwd,
    )  # fmt: skip


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    return line


def test_the_models_labels_are_the_names_given_at_init(home: Path) -> None:
    listed = run_cli("models", "--home", home).stdout
    assert "sentiment" in listed and "negative, positive" in listed and "version 1" in listed
    answer = json.loads(run_cli("predict", "--home", home, "--json", "Cold food, rude staff").stdout)
    assert answer["label"] in ("negative", "positive")
    assert set(answer["probabilities"]) == {"negative", "positive"}
    said = run_cli("predict", "--home", home, "Great food", "Awful service").stdout
    assert said.count("prediction id") == 2 and "learnloop feedback" in said


def test_feedback_from_the_terminal_is_stored_checked_and_counted(home: Path) -> None:
    answer = json.loads(run_cli("predict", "--home", home, "--json", "The soup was cold").stdout)
    pid = answer["prediction_id"]
    stored = run_cli("feedback", pid, "--home", home, "--label", "negative").stdout
    assert "stored label feedback" in stored and f"on prediction {pid}" in stored
    assert "unknown label 'neutral'" in error_line(learnloop("feedback", pid, "--home", home, "--label", "neutral"))
    assert "['negative', 'positive']" in error_line(learnloop("feedback", pid, "--home", home, "--label", "0"))

    typo = learnloop("feedback", pid, "--home", home, "--thumbs", "up", "--kind", "thumb")
    assert typo.returncode == 0, typo.stderr  # a warning: the fields decide the kind
    assert "warning: unknown feedback kind 'thumb'" in typo.stderr and "make thumbs feedback" in typo.stderr
    mismatch = learnloop("feedback", pid, "--home", home, "--thumbs", "down", "--kind", "rating")
    assert "--kind rating given, but the fields given make thumbs feedback" in error_line(mismatch)
    example = run_cli("feedback", "--home", home, "--text", "Lovely staff", "--label", "positive").stdout
    assert "stored example feedback" in example
    assert "'example': 1" in run_cli("status", "--home", home).stdout


def test_feedback_given_by_mistake_is_retracted_from_the_terminal(home: Path) -> None:
    pid = json.loads(run_cli("predict", "--home", home, "--json", "Dry bread").stdout)["prediction_id"]
    run_cli("feedback", pid, "--home", home, "--thumbs", "up", "--feedback-id", "slip-1")
    taken = run_cli("feedback", "--home", home, "--retract", "slip-1", "--reason", "wrong button").stdout
    assert taken.startswith("retracted thumbs feedback ")
    assert "not found" in error_line(learnloop("feedback", "--home", home, "--retract", "slip-1"))
    alone = learnloop("feedback", pid, "--home", home, "--retract", "slip-1", "--label", "negative")
    assert "give it alone, without prediction_id, label" in error_line(alone)
    assert "--reason goes with --retract" in error_line(learnloop("feedback", "--home", home, "--reason", "x"))
    again = run_cli("feedback", pid, "--home", home, "--thumbs", "down", "--feedback-id", "slip-1").stdout
    assert "stored thumbs feedback" in again  # the key is free again


def test_the_home_and_the_model_are_found_without_options_or_named_in_one_line(home: Path, tmp_path: Path) -> None:
    by_env = learnloop("status", LEARNLOOP_HOME=str(home), cwd=tmp_path)
    assert by_env.returncode == 0, by_env.stderr
    assert "sentiment (binary: negative, positive)" in by_env.stdout
    (tmp_path / "learnloop-home").symlink_to(home)  # ./learnloop-home, the default
    assert "versions of sentiment" in learnloop("versions", cwd=tmp_path).stdout

    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no learnloop home at learnloop-home" in error_line(learnloop("status", cwd=empty))
    assert list(empty.iterdir()) == []  # a read command creates no home

    two = tmp_path / "two"
    shutil.copytree(home, two)
    data = write_tsv(tmp_path / "few.tsv", uci_rows("imdb")[:60])
    run_cli(*init_args(data, "movies"), "--home", two)
    line = error_line(learnloop("status", "--home", two))
    assert f"{two} holds 2 models (movies, sentiment); choose one with --model" in line
    assert "movies (binary" in run_cli("status", "--home", two, "--model", "movies").stdout


def test_a_rejected_retrain_says_so_first_wherever_its_job_and_version_are_shown(home: Path) -> None:
    waited = run_cli("retrain", "--home", home, "--wait").stdout
    assert "version 2 rejected: recent feedback too little to judge" in waited
    jobs = run_cli("jobs", "list", "--home", home).stdout
    assert "succeeded: candidate rejected" in jobs and "version 2 rejected: recent feedback" in jobs
    versions = run_cli("versions", "--home", home).stdout
    assert "rejected: recent feedback too little" in versions and "learnloop versions --version 2" in versions

    queued = run_cli("retrain", "--home", home).stdout
    full_id = queued.split("queued retrain job ", 1)[1].split()[0]
    end = full_id.rsplit("-", 1)[1]  # the start is the time, shared by the ids made about then
    listed = run_cli("jobs", "list", "--home", home).stdout
    assert end in listed and full_id not in listed
    assert end in run_cli("status", "--home", home).stdout
    cancelled = run_cli("jobs", "cancel", end, "--home", home).stdout
    assert f"job {full_id} (retrain of sentiment) cancelled while queued" in cancelled
    assert "last 6 or more characters" in error_line(learnloop("jobs", "cancel", end[-4:], "--home", home))

    events = learnloop("events", "--home", home, "--kind", "promote")
    assert events.returncode == 0
    assert "warning: no 'promote' event" in events.stderr and "promoted" in events.stderr


def test_version_and_examples_in_the_help() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).output.strip() == f"learnloop {__version__}"
    assert "learnloop predict" in runner.invoke(app, ["--help"]).output
    for command in (["init"], ["predict"], ["feedback"], ["models"], ["status"], ["versions"], ["retrain"],
                    ["serve"], ["jobs", "cancel"]):  # fmt: skip
        shown = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"}).output
        assert "Examples:" in shown and f"learnloop {' '.join(command)}" in shown, command
