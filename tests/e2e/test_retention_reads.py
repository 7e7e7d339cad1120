"""What reads an older version's artifact, after the retention policy pruned it, on a real home
(SQLite and PostgreSQL): a version asked for by name (its report, a comparison, its weights)
is refused with 409 ``artifact_removed`` (problem+json over HTTP, a readable page on the
dashboard, one line from the CLI); the fairness report, which covers many versions, leaves a
removed one's golden-set figures out and says so; a version whose caches were dropped still
loads, and a retrain from a champion without its term counts counts every text afresh."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from conftest import asgi_get, create_model, make_settings, on_sqlite, run_cli, uci_rows
from learnloop.api.model_schemas import ModelCreate
from learnloop.domain import FeedbackInput, VersionStatus
from learnloop.errors import ArtifactRemovedError
from learnloop.families.manifest import load_predictor
from learnloop.services import Services, build_services
from version_copies import add_version

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def assert_removed(response: Any, version: int) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "artifact_removed"
    assert f"version {version} " in response.json()["detail"] and "retention policy" in response.json()["detail"]


@on_sqlite
def test_a_pruned_version_asked_for_by_name_is_409_artifact_removed(tmp_path: Path, database_url: str) -> None:
    home = tmp_path / "home"
    services = build_services(make_settings(home, database_url))
    try:
        champion = create_model(services, "m")
        services.registry.update_policy("m", {"keep_rejected": 0}, actor="test")
        pruned = add_version(services, champion, VersionStatus.REJECTED, 60, 1)
        kept = add_version(services, champion, VersionStatus.REJECTED, 60, 2)
        services.registry.update_policy("m", {"keep_rejected": 1}, actor="test")
        report = services.retention.apply("m", actor="test")
        assert {p.pruning.version for p in report.pruned if p.pruning.action == "remove"} == {pruned}

        with pytest.raises(ArtifactRemovedError):
            services.reports.report("m", pruned)
        for a, b in ((champion.version, pruned), (pruned, champion.version)):
            with pytest.raises(ArtifactRemovedError):
                services.reports.compare("m", a, b)
        # the kept version lost only its caches: it is still scored, compared and explained
        assert services.registry.version("m", kept).caches_dropped_at is not None
        assert services.reports.compare("m", champion.version, kept).n > 0

        assert_removed(asgi_get(services, f"/v1/models/m/versions/{pruned}/weights"), pruned)
        assert_removed(asgi_get(services, f"/v1/models/m/weights/changes?a={champion.version}&b={pruned}"), pruned)
        assert asgi_get(services, f"/v1/models/m/versions/{kept}/weights").status_code == 200
        page = asgi_get(services, f"/dashboard/models/m/compare?a={champion.version}&b={pruned}")
        assert page.status_code == 409 and "retention policy" in page.text, page.text[:500]
        version_page = asgi_get(services, f"/dashboard/models/m/versions/{pruned}")
        assert version_page.status_code == 200 and "retention policy" in version_page.text
    finally:
        services.close()

    common = ("--home", home, "--database-url", database_url, "--model", "m")
    for args in (("compare", *common, str(champion.version), str(pruned)),
                 ("report", *common, "--version", str(pruned), "--out", tmp_path / "r"),
                 ("explain", *common, "--text", "good", "--version", str(pruned))):  # fmt: skip
        refused = run_cli(*args, check=False)
        assert refused.returncode == 1, (args, refused.stdout, refused.stderr)
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and "retention policy" in lines[0] and "Traceback" not in refused.stderr, lines
    assert not (tmp_path / "r" / "report.html").exists()
    assert "golden examples" in run_cli("compare", *common, str(champion.version), str(kept)).stdout


def test_fairness_leaves_a_pruned_versions_golden_figures_out_and_says_so(services: Services) -> None:
    tagged = [(t, y, "phones") for t, y in uci_rows("amazon_cells")[:150]]
    tagged += [(t, y, "films") for t, y in uci_rows("imdb")[:150]]
    random.Random(0).shuffle(tagged)
    rows = [{"text": t, "label": y, "metadata": {"domain": d}} for t, y, d in tagged]
    body = {"name": "f", "rows": rows, "policy": {"fairness_fields": "domain", "retrain_every": 10_000}}
    created = services.creation.create(*ModelCreate.model_validate(body).request(), actor="test")
    v1 = created.version
    fresh = uci_rows("amazon_cells")[150:190]
    served = services.predictions.predict_many("f", [t for t, _ in fresh], metadata=[{"domain": "phones"}] * 40)
    services.ingest.flush()
    services.feedback.record_sync(
        "f", [FeedbackInput(prediction_id=a.prediction_id, label=y) for a, (_, y) in zip(served, fresh, strict=True)]
    )
    for n in (2, 3):  # v1 retires, then v2 (the rollback target, kept); v3 serves
        services.registry.promote(
            "f", add_version(services, v1, VersionStatus.CANDIDATE, 0, n), actor="test", force=True
        )
    services.registry.update_policy("f", {"keep_retired": 0, "keep_retired_days": 0}, actor="test")
    removed = {
        p.pruning.version for p in services.retention.apply("f", actor="test").pruned if p.pruning.action == "remove"
    }
    assert removed == {v1.version}

    report = services.fairness.report("f")
    by_version = {v.version: v for v in report.versions}
    assert set(by_version) == {1, 3}
    assert by_version[1].artifact_removed and by_version[1].golden == [] and by_version[1].n == 40
    assert by_version[1].fields[0].n == 40  # its figures on the feedback it served stay
    assert not by_version[3].artifact_removed and by_version[3].golden[0].field == "domain"
    assert any("v1" in note and "retention policy" in note for note in report.notes), report.notes

    answer = asgi_get(services, "/v1/models/f/fairness")
    assert answer.status_code == 200, answer.text
    versions = {v["version"]: v for v in answer.json()["versions"]}
    assert versions[1]["artifact_removed"] is True and versions[3]["artifact_removed"] is False
    assert any("retention policy" in note for note in answer.json()["notes"])


def test_a_retrain_from_a_champion_whose_term_counts_were_dropped_counts_afresh(services: Services) -> None:
    v1 = create_model(services, "m")
    services.registry.update_policy("m", {"keep_retired": 100}, actor="test")  # caches dropped, artifacts kept
    v2 = add_version(services, v1, VersionStatus.RETIRED, 1, 2)
    services.retention.apply("m", actor="test")
    dropped = services.registry.version("m", v2)
    assert dropped.caches_dropped_at is not None and dropped.artifacts_pruned_at is None
    assert not (services.store.get_dir(dropped.artifact_uri) / "train_counts.npz").exists()
    services.registry.promote("m", v2, actor="test", force=True)  # a version without caches still serves
    assert services.predictions.predict_many("m", ["great food"])[0].version == v2

    fresh = uci_rows("amazon_cells")[:60]
    served = services.predictions.predict_many("m", [t for t, _ in fresh])
    services.ingest.flush()
    services.feedback.record_sync(
        "m", [FeedbackInput(prediction_id=a.prediction_id, label=y) for a, (_, y) in zip(served, fresh, strict=True)]
    )
    outcome = services.training.retrain("m", actor="test")
    candidate = services.registry.version("m", outcome.version)
    assert candidate.parent_version == v2 and candidate.status != VersionStatus.FAILED
    directory = services.store.get_dir(candidate.artifact_uri)
    assert (directory / "train_counts.npz").exists()  # the candidate counted every text itself
    predictor = load_predictor(services.store, candidate.artifact_uri)
    assert predictor.predict_proba(["great food"]).shape == (1, 2)
