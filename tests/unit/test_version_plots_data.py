"""The pure parts behind the story and the version plots: ROC curves and reliability bins,
buckets of judged answers, where an event sits among answers, drifted examples, lineages."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from feedback_events import feedback_event
from learnloop.dashboard.story_chart import rank_at
from learnloop.domain import ModelVersion, VersionStatus
from learnloop.drift.examples import by_drift, drifted_examples, example_detector
from learnloop.evaluation import roc_auc
from learnloop.evaluation.calibration import expected_calibration_error
from learnloop.evaluation.curves import reliability_bins, roc_curves
from learnloop.monitoring.timeline import accuracy_timeline
from learnloop.reports.service import lineages, param_changes
from learnloop.tasks.classification import LabelOutcomes

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_roc_curves_have_the_areas_of_roc_auc_and_reliability_bins_add_up_to_the_ece() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    proba = rng.dirichlet(np.ones(3), 300)
    proba[np.arange(300), truth] += 0.6
    proba /= proba.sum(axis=1, keepdims=True)
    curves = roc_curves(truth, proba, ["a", "b", "c"])
    assert [c.label for c in curves] == ["a", "b", "c"]  # one against the rest per class
    assert np.mean([c.auc for c in curves]) == pytest.approx(roc_auc(truth, proba))
    assert all(c.positives + c.negatives == 300 for c in curves)
    (binary,) = roc_curves(truth[truth < 2], proba[truth < 2][:, :2], ["a", "b"])
    assert binary.label == "b"
    bins = reliability_bins(truth, proba)
    assert sum(b.n for b in bins) == 300
    ece = sum(b.n * abs(b.accuracy - b.confidence) for b in bins) / 300
    assert ece == pytest.approx(expected_calibration_error(truth, proba))
    assert roc_curves(np.zeros(5, dtype=np.intp), proba[:5], ["a", "b", "c"]) == []


def events(outcomes: list[tuple[int, bool]]) -> list[object]:
    """One labelled answer per (version, right), a minute apart."""
    return [
        feedback_event(
            {
                "id": f"f{i}",
                "kind": "label",
                "label": "1" if right else "0",
                "prediction_id": f"p{i}",
                "predicted_label": "1",
                "version": version,
                "served_at": T0 + timedelta(minutes=i),
                "created_at": T0 + timedelta(minutes=i, seconds=30),
            }
        )
        for i, (version, right) in enumerate(outcomes)
    ]


def test_answers_are_bucketed_by_count_and_a_new_version_starts_a_bucket() -> None:
    outcomes = [(1, i % 4 != 0) for i in range(50)] + [(2, True)] * 15
    points = accuracy_timeline(events(outcomes), LabelOutcomes(["0", "1"]), points=5, min_size=10)  # type: ignore[arg-type]
    assert [(p.version, p.first, p.n) for p in points] == [
        (1, 0, 13),
        (1, 13, 13),
        (1, 26, 13),
        (1, 39, 11),
        (2, 50, 13),
        (2, 63, 2),
    ]
    assert points[0].accuracy == pytest.approx(9 / 13) and points[-1].accuracy == 1.0
    assert points[1].start == T0 + timedelta(minutes=13) and points[1].end == T0 + timedelta(minutes=25)
    assert rank_at(points, T0 - timedelta(days=1)) == 0
    assert rank_at(points, T0 + timedelta(minutes=50)) == 50  # the first answer of version 2
    assert rank_at(points, T0 + timedelta(minutes=6)) == pytest.approx(6.5)  # inside a bucket
    assert rank_at(points, T0 + timedelta(days=9)) == 65
    assert accuracy_timeline([], LabelOutcomes(["0", "1"])) == []


def test_drifted_examples_come_from_the_part_of_the_window_that_grew() -> None:
    texts = ["short", "a much longer text about a film", "tiny", "another film review that is long"]
    answers = [
        {"label": "1", "probabilities": {"0": 0.1, "1": 0.9}},
        {"label": "0", "probabilities": {"0": 0.6, "1": 0.4}},
    ] * 2
    length = {
        "detector": "text_length",
        "effect_size": 0.3,
        "effect_threshold": 0.1,
        "drifted": True,
        "detail": {"edges": [10.0], "reference_share": [0.8, 0.2], "window_share": [0.5, 0.5]},
    }
    found = drifted_examples(length, texts, answers)
    assert found.texts == [texts[1], texts[3]] and found.why.startswith("characters > 10")
    labels = {
        "detector": "prediction",
        "detail": {"labels": ["0", "1"], "reference_share": [0.5, 0.5], "window_share": [0.2, 0.8]},
    }
    assert drifted_examples(labels, texts, answers).texts == [texts[0], texts[2]]
    oov = {"detector": "oov", "detail": {"top_unknown_words": [{"token": "film", "texts": 2}]}}
    assert drifted_examples(oov, texts, answers, limit=1).texts == [texts[1]]
    multivariate = {"detector": "multivariate", "effect_size": 0.4, "effect_threshold": 0.1, "drifted": True}
    assert drifted_examples(multivariate, texts, answers, limit=2).texts == texts[:2]  # the newest
    assert [r["detector"] for r in by_drift([length, multivariate])] == ["multivariate", "text_length"]
    assert example_detector([length, multivariate]) is length  # it singles texts out


def version(number: int, parent: int | None, **params: object) -> ModelVersion:
    return ModelVersion(
        "m", number, VersionStatus.RETIRED, "tfidf-logreg", dict(params), None, parent, "x", {}, None, "k", T0
    )


def test_lineages_meet_at_the_first_common_ancestor_and_params_list_what_differs() -> None:
    versions = {v.version: v for v in [version(1, None), version(2, 1), version(3, 2), version(4, 1), version(5, None)]}
    assert lineages(versions, 3, 4) == ([3, 2, 1], [4, 1], 1)
    assert lineages(versions, 1, 3) == ([1], [3, 2, 1], 1)
    assert lineages(versions, 3, 5) == ([3, 2, 1], [5], None)
    a, b = version(1, None, C=1.0, ngram_max=2), version(2, None, C=10.0, min_df=2, ngram_max=2)
    assert [(p.key, p.a, p.b) for p in param_changes(a, b)] == [("C", 1.0, 10.0), ("min_df", None, 2)]
    assert [p.key for p in param_changes(a, replace(b, family="other"))] == ["family", "C", "min_df"]
