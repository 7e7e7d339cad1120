"""learnloop tune: a bounded Optuna study on shipped data, kept in learnloop's own database
(SQLite and PostgreSQL), shared by a second worker, and read back through the CLI, the API,
the dashboard and as pictures."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import asgi_get, create_model, fresh_postgres_database, make_settings
from learnloop.cli.main import app as cli_app
from learnloop.config import Settings
from learnloop.domain import FeedbackInput, ModelVersion
from learnloop.errors import ValidationError
from learnloop.services import Services, build_services
from learnloop.store.db import Database
from learnloop.store.migrate import schema_drift

PNG = b"\x89PNG\r\n\x1a\n"


def test_tune_runs_a_bounded_study_in_the_models_database_and_a_second_worker_joins_it(
    services: Services,
    settings: Settings,
    make_model: Callable[..., ModelVersion],
    shipped_rows: Callable[[str], list[tuple[str, str]]],
    tmp_path: Path,
) -> None:
    make_model(services, "m")
    where = ["--home", str(settings.home), "--database-url", settings.database_url, "--model", "m"]
    runner = CliRunner()
    first = runner.invoke(
        cli_app, ["tune", *where, "--budget", "60", "--trials", "4", "--out", str(tmp_path)], env={"COLUMNS": "250"}
    )
    assert first.exit_code == 0, first.output
    assert "study m:tfidf-logreg: 4 trials" in first.output and "best parameters: C=" in first.output
    assert (tmp_path / "trials.png").read_bytes().startswith(PNG)
    assert (tmp_path / "importance.png").read_bytes().startswith(PNG)
    cutoff = services.studies.study("m", "m:tfidf-logreg").attrs["cutoff"]

    # Feedback arrives; a second worker joins the study and scores the same data (its cutoff).
    services.feedback.record_sync("m", [FeedbackInput(text=t, label=y) for t, y in shipped_rows("imdb")[:60]])
    second = runner.invoke(cli_app, ["tune", *where, "--budget", "60", "--trials", "3"], env={"COLUMNS": "250"})
    assert second.exit_code == 0, second.output
    view = services.studies.study("m", "m:tfidf-logreg")
    assert len(view.trials) == 7 and view.attrs["cutoff"] == cutoff
    assert view.trials[0].params == {"C": 10.0, "ngram_max": 2, "min_df": 1, "sublinear_tf": True, "class_weight": None}
    assert view.best_params["C"] == max(view.trials, key=lambda t: t.value or 0).params["C"]
    assert all(len(t.fold_scores) == 3 for t in view.trials if t.state == "complete")

    listed = asgi_get(services, "/v1/models/m/studies")
    assert listed.status_code == 200 and [s["name"] for s in listed.json()] == ["m:tfidf-logreg"], listed.text
    study = asgi_get(services, "/v1/models/m/studies/m:tfidf-logreg")
    assert study.status_code == 200 and len(study.json()["trials"]) == 7 and study.json()["best_params"]
    picture = asgi_get(services, "/v1/models/m/studies/m:tfidf-logreg/trials.png")
    assert picture.headers["content-type"] == "image/png" and picture.content.startswith(PNG)
    assert asgi_get(services, "/v1/models/m/studies/nope").status_code == 404
    page = asgi_get(services, "/dashboard/models/m/studies/m:tfidf-logreg")
    assert page.status_code == 200 and "importance.png" in page.text and "Best parameters" in page.text
    shown = datetime.fromisoformat(cutoff).strftime("%Y-%m-%d %H:%M:%S")
    assert f"data up to {shown}." in page.text and cutoff not in page.text  # as the rest of the dashboard
    assert asgi_get(services, "/dashboard/models/m/studies/m:tfidf-logreg/importance.png").content.startswith(PNG)

    # Optuna's tables sit beside learnloop's without upsetting its schema check.
    db = Database(settings.database_url)
    try:
        assert schema_drift(db) == []
    finally:
        db.dispose()


@pytest.mark.postgres
def test_two_workers_at_once_share_one_study_on_postgresql(tmp_path: Path) -> None:
    """Two processes' services on one fresh PostgreSQL database (Optuna's tables not made yet)."""
    with fresh_postgres_database() as url:
        workers = [build_services(make_settings(tmp_path / "home", url)) for _ in range(2)]
        try:
            create_model(workers[0], "m")
            with ThreadPoolExecutor(2) as pool:
                runs = [
                    pool.submit(w.studies.tune, "m", budget_seconds=60, max_trials=3, study="shared") for w in workers
                ]
                outcomes = [run.result() for run in runs]
            assert {o.result.study for o in outcomes} == {"shared"}
            assert len(workers[1].studies.study("m", "shared").trials) == 6
        finally:
            for w in workers:
                w.close()


def test_tune_apply_makes_the_best_trial_what_the_next_retrain_trains(
    services: Services,
    settings: Settings,
    make_model: Callable[..., ModelVersion],
    shipped_rows: Callable[[str], list[tuple[str, str]]],
) -> None:
    make_model(services, "m")  # tfidf-logreg
    where = ["--home", str(settings.home), "--database-url", settings.database_url, "--model", "m"]
    tuned = CliRunner().invoke(
        cli_app,
        ["tune", *where, "--family", "incremental", "--budget", "60", "--trials", "3", "--apply"],
        env={"COLUMNS": "250"},
    )
    assert tuned.exit_code == 0, tuned.output
    view = services.studies.study("m", "m:incremental")
    model = services.registry.get_model("m")
    assert model.family == "incremental" and model.params == view.best_params
    assert "applied: m's next retrains train incremental with" in tuned.output
    event = services.registry.events("m", kinds=["params_changed"])[0]
    assert event.actor.startswith("cli") and event.data["study"] == "m:incremental"
    assert event.data["trial"] == view.best_trial and event.data["previous"]["family"] == "tfidf-logreg"

    services.feedback.record_sync("m", [FeedbackInput(text=t, label=y) for t, y in shipped_rows("imdb")[:60]])
    v2 = services.registry.version("m", services.training.retrain("m", actor="test").version)
    assert v2.family == "incremental" and v2.params == view.best_params


def test_applied_parameters_are_checked_as_init_checks_them(
    services: Services, make_model: Callable[..., ModelVersion]
) -> None:
    make_model(services, "m")
    for family, params, field in (
        ("tfidf-logreg", {"no_such_key": 1}, "params"),
        ("tfidf-logreg", {"C": -1.0}, "params"),
        ("no-such-family", {}, "family"),
    ):
        with pytest.raises(ValidationError) as caught:
            services.registry.set_family_params("m", family, params, actor="test")
        assert (caught.value.field or "").startswith(field), caught.value
    assert services.registry.get_model("m").family == "tfidf-logreg"
    assert services.registry.events("m", kinds=["params_changed"]) == []
