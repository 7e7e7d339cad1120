"""``learnloop families`` lists every family with its parameters and defaults; ``init --family
--param`` checks them before a home is made or the data read, one line naming what is wrong."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import run_cli, uci_rows
from learnloop.families import FAMILIES

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_families_lists_each_family_with_its_parameters_and_defaults() -> None:
    listed = {entry["family"]: entry for entry in json.loads(run_cli("families", "--json").stdout)}
    assert set(listed) == set(FAMILIES)
    incremental = {p["name"]: p for p in listed["incremental"]["parameters"]}
    assert incremental["replay_size"]["default"] == 5000 and incremental["replay_size"]["type"] == "int"
    tfidf = {p["name"]: p for p in listed["tfidf-logreg"]["parameters"]}
    assert tfidf["class_weight"]["type"] == "balanced | null"
    assert "learnloop[embeddings]" in listed["embedding-logreg"]["summary"]
    shown = run_cli("families").stdout
    assert "embedding-logreg" in shown and "learnloop[embeddings]" in shown and "ngram_min" in shown


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (("--param", "nope=1"), ("unknown parameter(s) for tfidf-logreg: nope", "known: ngram_min, ngram_max")),
        (("--param", 'C="4"'), ("parameter C of tfidf-logreg", "valid number", "'4'")),
        (("--param", "ngram_min=3", "--param", "ngram_max=2"), ("ngram_min 3 is above ngram_max 2",)),
        (("--family", "incremental", "--param", "alpha=-1"), ("parameter alpha of incremental", "greater than 0")),
        (("--family", "embedding-logreg", "--param", "class_weight=even"), ("class_weight", "'balanced'")),
    ],
)
def test_a_bad_param_is_one_line_before_the_data_is_read(
    tmp_path: Path, extra: tuple[str, ...], words: tuple[str, ...]
) -> None:
    home = tmp_path / "home"
    proc = run_cli(
        "init", "--home", home, "--model", "m", "--data", tmp_path / "not-there.csv", *extra, check=False
    )  # the data file does not exist: the parameter is what is reported
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line, line
    for word in words:
        assert word in line, line
    assert not home.exists()


def test_init_trains_the_family_with_the_params_given(tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    with data.open("w", newline="") as out:
        csv.writer(out).writerows([("text", "label"), *uci_rows("yelp")[:300]])
    home = tmp_path / "home"
    run_cli(
        "init", "--home", home, "--model", "m", "--data", data, "--family", "incremental",
        "--param", "alpha=0.0001", "--param", "replay_size=50",
    )  # fmt: skip
    shown = run_cli("versions", "--home", home, "--model", "m", "--version", "1").stdout
    assert "family incremental" in shown


def test_a_private_version_shows_the_guarantee_its_fit_spent(tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    with data.open("w", newline="") as out:
        csv.writer(out).writerows([("text", "label"), *uci_rows("yelp")[:300]])
    home = tmp_path / "home"
    run_cli(
        "init", "--home", home, "--model", "m", "--data", data, "--family", "dp-logreg",
        "--param", "target_epsilon=2.5", "--param", "epochs=3", "--param", "n_features=1024",
    )  # fmt: skip
    shown = run_cli("versions", "--home", home, "--model", "m", "--version", "1").stdout
    assert "family dp-logreg" in shown
    line = next(line for line in shown.splitlines() if line.startswith("differential privacy:"))
    epsilon = float(line.split("epsilon ")[1].split(",")[0])
    assert 2.0 < epsilon <= 2.5 and "rdp accountant" in line and "reproducible" not in line


def test_replay_fits_the_family_and_parameters_given_and_its_baselines_the_same(tmp_path: Path) -> None:
    rows = uci_rows("yelp")
    files = {}
    for name, part in (("boot", rows[:400]), ("stream", rows[400:560])):
        files[name] = tmp_path / f"{name}.csv"
        with files[name].open("w", newline="") as out:
            csv.writer(out).writerows([("text", "label"), *part])
    common = ("replay", "--bootstrap", files["boot"], "--stream", files["stream"], "--json")
    family = ("--family", "incremental", "--param", "update_step=0.2", "--param", "replay_size=60")
    summary = json.loads(run_cli(*common, "--out", tmp_path / "r", *family).stdout)
    assert summary["baselines"]["family"] == "incremental"
    assert summary["baselines"]["params"]["update_step"] == 0.2
    assert summary["baselines"]["params"]["replay_size"] == 60
    bad = run_cli(*common, "--out", tmp_path / "bad", "--family", "incremental", "--param", "steps=3", check=False)
    assert bad.returncode != 0
    assert "steps" in bad.stdout + bad.stderr and "update_step" in bad.stdout + bad.stderr
