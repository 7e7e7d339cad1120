"""The data behind the model page's story, the drift pictures, a version's plots and the
comparison of two versions, on the four days of ``tests/story_scenario.py`` (one session-wide
SQLite home, read only): version 1 serves Yelp then movie sentences, version 2 is rejected by
the gate, version 3 (parent 1) is promoted and serves phone reviews."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import make_settings, run_cli
from learnloop.dashboard import views
from learnloop.errors import NotFoundError, ValidationError
from learnloop.services import Services, build_services


@pytest.fixture(scope="module")
def services(story_home: Any) -> Iterator[Services]:
    built = build_services(make_settings(story_home.home, story_home.database_url))
    try:
        yield built
    finally:
        built.close()


def test_drift_is_checked_after_every_n_answers_and_shows_the_drifted_texts(
    story_home: Any, services: Services
) -> None:
    check = story_home.story.drift
    assert check is not None, "420 answers with drift_check_answers=200 and no timer: one check was due"
    assert check.version == 1 and check.n == 300 and check.status == "drift"
    assert {"oov", "text_length"} <= set(check.alarms)
    examples = services.drift.examples("m", check)
    assert examples is not None and examples.detector == "oov" and len(examples.texts) == 5
    assert "movie" in examples.why and all("movie" in t.lower() or "film" in t.lower() for t in examples.texts)
    longer = services.drift.examples("m", check, "text_length")
    assert longer is not None and longer.why.startswith("characters > 99")
    assert all(len(t) > 99 for t in longer.texts) and longer.texts
    page = views.model_page(services, "m")
    drift = page["drift"]
    assert drift.data["shown"]["detector"] == "multivariate"  # the largest effect against its threshold
    pictures = [str(c) for c in drift.data["distributions"]]
    assert len(pictures) == 3  # prediction, text_length and oov (multivariate alarmed too, but has no bins)
    assert any("&gt; 99" in p for p in pictures) and any("answers per label" in p for p in pictures)


def test_the_story_buckets_judged_answers_by_version_and_marks_promotions_and_the_rejection(
    story_home: Any, services: Services
) -> None:
    points = services.performance.timeline("m")
    assert sum(p.n for p in points) == story_home.story.judged == 270
    assert [p.version for p in points] == [1] * 6 + [3] * 8  # 20 answers a bucket; a new version starts a new one
    assert [p.first for p in points] == list(range(0, 120, 20)) + list(range(120, 270, 20))
    assert points[-1].n == 10 and all(p.ci_low <= p.accuracy <= p.ci_high for p in points)
    phones = [p for p in points if p.version == 3]
    right = sum(round(p.accuracy * p.n) for p in phones)
    assert right / 150 == pytest.approx(services.performance.performance("m").online.accuracy)
    chart = str(views.model_page(services, "m")["online"].chart)
    assert chart.count('class="point"') == 14
    assert chart.count('class="marker promoted"') == 2 and chart.count('class="marker rejected"') == 1
    assert "v2 rejected by the gate: recent feedback" in chart
    assert "06 Apr" in chart and "09 Apr" in chart  # the three quiet days take no room, their dates are written


def test_a_versions_plots_are_its_golden_set_scores(services: Services) -> None:
    report = services.reports.report("m", 2)
    stored = services.registry.version("m", 2).metrics["golden"]
    matrix = np.array(report.metrics["confusion_matrix"]["matrix"])
    assert matrix.sum() == report.n == stored["n"] == 199
    assert report.metrics["accuracy"] == pytest.approx(stored["accuracy"])  # the gate's own scoring, again
    (roc,) = report.roc
    assert roc.label == "1" and roc.auc == pytest.approx(stored["roc_auc"]) and roc.positives == matrix[1].sum()
    assert (roc.fpr[0], roc.tpr[0], roc.fpr[-1], roc.tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert sum(b.n for b in report.reliability) == 199
    assert all(0.5 <= b.confidence <= 1.0 and b.low <= b.confidence <= b.high for b in report.reliability)
    page = views.version_page(services, "m", 2)
    assert page["plots"].available and page["versions"] == [1, 2, 3]


def test_two_versions_compared_on_the_same_examples(services: Services) -> None:
    found = services.reports.compare("m", 1, 3)
    first, third = found.reports
    assert found.n == first.n == third.n == 199
    acc = found.accuracy
    assert acc is not None
    assert acc.champion_accuracy == pytest.approx(first.metrics["accuracy"])
    assert acc.candidate_accuracy == pytest.approx(third.metrics["accuracy"])
    assert acc.difference == pytest.approx(third.metrics["accuracy"] - first.metrics["accuracy"])
    assert acc.ci_low < acc.difference < acc.ci_high and acc.confidence == 0.95
    assert set(found.metrics) == {"macro_f1", "roc_auc", "log_loss", "brier", "ece"}
    auc = found.metrics["roc_auc"]
    assert auc["a"] == pytest.approx(first.metrics["roc_auc"]) and auc["b"] == pytest.approx(third.metrics["roc_auc"])
    assert found.params == []  # same family and parameters: they differ by their data
    assert (found.lineage_a, found.lineage_b, found.common_ancestor) == ([1], [3, 1], 1)
    between = services.reports.compare("m", 2, 3)
    assert (between.lineage_a, between.lineage_b, between.common_ancestor) == ([2, 1], [3, 1], 1)


def test_comparing_a_version_with_itself_or_an_unknown_one_is_a_clear_error(services: Services) -> None:
    with pytest.raises(ValidationError, match="two different versions"):
        services.reports.compare("m", 3, 3)
    with pytest.raises(NotFoundError):
        services.reports.compare("m", 1, 9)


def test_the_cli_writes_a_report_to_mail_and_compares(story_home: Any, tmp_path: Path) -> None:
    db = ("--home", str(story_home.home), "--database-url", story_home.database_url, "--model", "m")
    done = run_cli("report", *db, "--version", "2", "--out", tmp_path / "v2")
    assert "m v2 on 199 golden examples: accuracy" in done.stdout
    html = (tmp_path / "v2" / "report.html").read_text()
    assert html.count("<svg") == 3 and "<script" not in html and "src=" not in html and "<style>" in html
    assert {p.name for p in (tmp_path / "v2").iterdir()} == {
        "report.html",
        "confusion.svg",
        "roc.svg",
        "reliability.svg",
    }
    compared = run_cli("compare", *db, "1", "3", "--out", tmp_path)
    assert "v3 - v1 on the same 199 golden examples" in compared.stdout and "ROC AUC" in compared.stdout
    assert (tmp_path / "compare.html").read_text().count("<svg") == 4
    refused = run_cli("compare", *db, "2", "2", check=False)
    assert refused.returncode == 1 and "compare two different versions" in refused.stderr
