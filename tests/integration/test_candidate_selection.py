"""Several candidates per retrain: each scored by forward chaining on the training side only,
the winner fitted and judged by the gate, every candidate recorded on the version (its API
answer, ``learnloop versions --version N`` and the dashboard's version page)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from conftest import asgi_get
from learnloop.cli.main import app as cli_app
from learnloop.config import Settings
from learnloop.domain import FeedbackInput, ModelVersion
from learnloop.errors import ValidationError
from learnloop.policy import Policy
from learnloop.services import Services

CreateModel = Callable[..., ModelVersion]
CANDIDATES = Policy.of(
    candidate_families="incremental",
    search_families="incremental",
    search_budget_seconds=60,
    search_trials=3,
    selection_blocks=3,
)


def test_a_candidate_chosen_among_several_is_recorded_with_its_rivals(
    services: Services,
    settings: Settings,
    make_model: CreateModel,
    shipped_rows: Callable[[str], list[tuple[str, str]]],
) -> None:
    make_model(services, "m", policy=CANDIDATES)
    feedback = [FeedbackInput(text=t, label=label) for t, label in shipped_rows("amazon_cells")[:120]]
    services.feedback.record_sync("m", feedback)
    services.training.retrain("m", actor="test")
    v2 = services.registry.version("m", 2)

    selection = v2.metrics["selection"]
    tried = {c["family"]: c for c in selection["candidates"]}
    assert list(tried) == ["tfidf-logreg", "incremental"]  # the model's own family first
    chosen = [c for c in selection["candidates"] if c["chosen"]]
    assert len(chosen) == 1 and chosen[0]["family"] == selection["family"] == v2.family
    for c in tried.values():
        assert len(c["fold_scores"]) == selection["folds"] == 2 and 0 <= c["score"] <= 1 and c["error"] is None
    loser = next(c for c in selection["candidates"] if not c["chosen"])
    assert loser["family"] in selection["reason"] and "before the gate's evidence" in selection["reason"]
    assert v2.params == selection["params"]
    searched = tried["incremental"]  # Optuna's trials, in a study in the model's own database
    assert searched["searched"] and searched["trials"] == 3 and searched["study"].startswith("m:retrain:")
    study = services.studies.study("m", searched["study"])
    assert len(study.trials) == 3 and study.best_params == searched["params"]

    answer = asgi_get(services, "/v1/models/m/versions/2")
    assert answer.status_code == 200, answer.text
    assert answer.json()["selection"]["candidates"] == selection["candidates"]
    assert answer.json()["family"] == selection["family"]
    page = asgi_get(services, "/dashboard/models/m/versions/2")
    assert page.status_code == 200 and 'id="candidates"' in page.text and "incremental" in page.text
    where = ["--home", str(settings.home), "--database-url", settings.database_url, "--model", "m"]
    shown = CliRunner().invoke(cli_app, ["versions", "--version", "2", *where], env={"COLUMNS": "300"})
    assert shown.exit_code == 0, shown.output
    assert "chosen among 2 candidates" in shown.output and "incremental" in shown.output


def test_an_update_competes_with_a_refit_on_a_new_domain_and_both_are_recorded(
    services: Services,
    settings: Settings,
    make_model: CreateModel,
    shipped_rows: Callable[[str], list[tuple[str, str]]],
) -> None:
    """An ``incremental`` model's retrain (no candidate families named) tries the champion's
    update and a fit from scratch side by side on the training side's folds, which here judge
    phone reviews after a model of restaurant ones; the version records both and the winner."""
    make_model(services, "m", family="incremental", policy=Policy.of(recent_holdout_max=40, selection_blocks=3))
    feedback = [FeedbackInput(text=t, label=label) for t, label in shipped_rows("amazon_cells")[:160]]
    services.feedback.record_sync("m", feedback)
    services.training.retrain("m", actor="test")
    v2 = services.registry.version("m", 2)

    selection = v2.metrics["selection"]
    candidates = selection["candidates"]
    assert [(c["family"], c["update"]) for c in candidates] == [("incremental", True), ("incremental", False)]
    for c in candidates:
        assert len(c["fold_scores"]) == selection["folds"] == 2 and 0 <= c["score"] <= 1 and c["error"] is None
    chosen = [c for c in candidates if c["chosen"]]
    assert len(chosen) == 1 and selection["update"] == chosen[0]["update"]
    assert chosen[0]["score"] == max(c["score"] for c in candidates)
    assert "incremental update" in selection["reason"] and "incremental refit" in selection["reason"]
    assert v2.family == "incremental" and v2.params == selection["params"]
    assert answered_candidates(services) == candidates
    page = asgi_get(services, "/dashboard/models/m/versions/2")
    assert page.status_code == 200 and page.text.count("(update of the champion)") == 1


def answered_candidates(services: Services) -> list[dict[str, object]]:
    answer = asgi_get(services, "/v1/models/m/versions/2")
    assert answer.status_code == 200, answer.text
    candidates: list[dict[str, object]] = answer.json()["selection"]["candidates"]
    return candidates


def test_a_policy_naming_a_family_that_cannot_compete_is_refused_when_set(
    services: Services, make_model: CreateModel
) -> None:
    make_model(services, "m")
    for changes, field in (
        ({"candidate_families": "no-such-family"}, "policy.candidate_families"),
        ({"candidate_families": "external"}, "policy.candidate_families"),  # answers made elsewhere
        ({"search_families": "incremental", "search_budget_seconds": 5}, "policy.search_families"),  # not a candidate
    ):
        with pytest.raises(ValidationError) as caught:
            services.registry.update_policy("m", changes, actor="test")
        assert caught.value.field == field, changes
    with pytest.raises(ValidationError, match="search_budget_seconds"):
        Policy.of(search_families="tfidf-logreg")  # a search needs time
