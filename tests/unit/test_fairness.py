"""Fairness statistics (``evaluation.fairness``) and the gate's fairness check, on data built
with a known gap: per-group figures equal what the rows say, intervals cover the true gap at
about their stated rate, small groups are reported without an interval and kept out of the
gaps, and a candidate that buys accuracy by widening a gap is rejected when the policy asks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from feedback_events import feedback_event
from learnloop.config import Limits
from learnloop.errors import ValidationError
from learnloop.evaluation.fairness import compare_largest_gap, fairness_report
from learnloop.evaluation.gate import ScoredSet, compare_classifiers
from learnloop.feedback.intake import check_prediction_metadata
from learnloop.policy import Policy
from learnloop.tasks.classification import derive_examples
from learnloop.tasks.classification.labels import event_metadata

LABELS = ["neg", "pos"]


def built(pos_missed: dict[str, int], per_label: int = 100) -> tuple[list[str], list[str], list[str]]:
    """Rows per group: ``per_label`` of each true label; every neg answered right, ``pos_missed``
    of the group's positives answered neg."""
    truth, pred, group = [], [], []
    for name, missed in pos_missed.items():
        truth += ["pos"] * per_label + ["neg"] * per_label
        pred += ["neg"] * missed + ["pos"] * (per_label - missed) + ["neg"] * per_label
        group += [name] * 2 * per_label
    return truth, pred, group


def test_group_figures_and_gaps_are_what_the_rows_say() -> None:
    truth, pred, group = built({"a": 0, "b": 30})
    report = fairness_report("g", truth, pred, group, LABELS, min_n=30, resamples=500)
    a, b = report.groups
    assert (a.group, a.n, b.group, b.n) == ("a", 200, "b", 200)
    assert a.accuracy.value == 1.0 and b.accuracy.value == pytest.approx(170 / 200)
    assert b.true_positive_rate["pos"].value == pytest.approx(0.70) and b.true_positive_rate["pos"].n == 100
    assert b.selection_rate["pos"].value == pytest.approx(70 / 200)
    gaps = {(g.metric, g.label): g for g in report.gaps}
    eo = gaps["equal_opportunity", "pos"]
    assert eo.value == pytest.approx(0.30) and (eo.highest, eo.lowest) == ("a", "b")
    assert eo.low is not None and eo.high is not None and 0.15 < eo.low < 0.30 < eo.high < 0.45
    assert gaps["demographic_parity", "pos"].value == pytest.approx(0.5 - 0.35)
    assert gaps["equal_opportunity", "neg"].value == 0.0  # every neg answered right in both groups
    assert report.largest is eo


def test_a_small_group_is_reported_without_an_interval_and_left_out_of_the_gaps() -> None:
    truth, pred, group = built({"a": 0, "b": 30})
    small_t, small_p, small_g = built({"tiny": 10}, per_label=10)
    report = fairness_report("g", truth + small_t, pred + small_p, group + small_g, LABELS, min_n=30)
    tiny = next(g for g in report.groups if g.group == "tiny")
    assert tiny.n == 20 and tiny.accuracy.value == pytest.approx(0.5)
    assert not tiny.accuracy.meaningful and tiny.accuracy.low is None and tiny.accuracy.high is None
    # tiny's true-positive rate of pos is 0: in the gaps it would make the largest gap 1.0.
    assert all(g.groups == 2 and "tiny" not in (g.highest, g.lowest) for g in report.gaps)
    assert report.largest is not None and report.largest.value == pytest.approx(0.30)


def test_rows_without_the_attribute_are_left_out_and_one_group_has_no_gap() -> None:
    truth, pred, group = built({"a": 5})
    attributes: list[object] = [None] * 50 + group[50:]
    report = fairness_report("g", truth, pred, attributes, LABELS, min_n=30)
    assert report.n == 150 and [g.group for g in report.groups] == ["a"] and report.gaps == []


def test_the_gap_interval_covers_the_true_gap_about_as_often_as_it_says() -> None:
    """Samples from a population whose true equal-opportunity gap is 0.20: the 90% interval
    should hold it in about 90% of samples (binomial spread over 80 samples: 80-98%)."""
    rng = np.random.default_rng(11)
    covered, samples = 0, 80
    for s in range(samples):
        n = 600
        group = rng.choice(["a", "b"], n)
        truth = rng.choice(LABELS, n)
        hit_pos = rng.random(n) < np.where(group == "a", 0.90, 0.70)
        pred = np.where(truth == "pos", np.where(hit_pos, "pos", "neg"), np.where(rng.random(n) < 0.8, "neg", "pos"))
        report = fairness_report(
            "g", truth.tolist(), pred.tolist(), group.tolist(), LABELS, resamples=400, confidence=0.90, seed=s
        )
        eo = next(g for g in report.gaps if (g.metric, g.label) == ("equal_opportunity", "pos"))
        assert eo.low is not None and eo.high is not None
        covered += eo.low <= 0.20 <= eo.high
    assert 0.78 <= covered / samples <= 0.99, covered


def test_paired_gap_comparison_sees_a_widened_gap_and_none_when_nothing_changed() -> None:
    truth, champion, group = built({"a": 15, "b": 15})
    same = compare_largest_gap("g", truth, champion, champion, group, LABELS, min_n=30)
    assert same.difference == 0 and same.low == 0 and same.high == 0 and same.groups == 2
    _, candidate, _ = built({"a": 0, "b": 15})  # fixes group a only: the gap opens to 0.15
    wider = compare_largest_gap("g", truth, champion, candidate, group, LABELS, min_n=30)
    assert wider.champion == 0  # both groups answered alike
    assert wider.candidate == pytest.approx(0.15)  # true-positive rates of pos: 1.0 vs 0.85
    assert wider.low is not None and wider.low > 0


def gate_sets(candidate_misses: dict[str, int]) -> tuple[ScoredSet, ScoredSet]:
    """Golden: both versions alike. Recent: the champion misses 25 of each group's positives;
    the candidate ``candidate_misses`` (better overall in every case below)."""
    g_truth, g_pred, _ = built({"x": 10})
    golden = ScoredSet(truth=g_truth, champion=g_pred, candidate=g_pred)
    truth, champion, group = built({"a": 25, "b": 25})
    _, candidate, _ = built(candidate_misses)
    recent = ScoredSet(truth=truth, champion=champion, candidate=candidate, metadata=[{"region": g} for g in group])
    return golden, recent


def fairness_reasons(verdict: dict[str, object]) -> list[str]:
    return [r for r in verdict["reasons"] if str(r).startswith("fairness")]  # type: ignore[attr-defined]


def test_the_gate_rejects_a_better_candidate_that_widens_the_gap_beyond_the_margin() -> None:
    golden, recent = gate_sets({"a": 0, "b": 25})  # fixes group a only: +12.5 points, gap 0 -> 0.25
    policy = Policy.of(fairness_fields="region", fairness_margin=0.05, min_recent_examples=30)
    verdict = compare_classifiers(golden, recent, LABELS, policy, resamples=500)
    [reason] = fairness_reasons(verdict)
    assert verdict["passed"] is False and "NOT shown within the margin 0.05" in reason, verdict["reasons"]
    assert "fairness" in verdict["headline"]
    [stored] = verdict["fairness"]
    assert stored["set"] == "recent" and stored["difference"] == pytest.approx(0.25)

    # The same candidate without the fairness requirement: reported, not judged, and promoted.
    loose = compare_classifiers(golden, recent, LABELS, policy.updated({"fairness_margin": 1.0}), resamples=500)
    assert loose["passed"] is True and "not judged" in fairness_reasons(loose)[0], loose["reasons"]


def test_the_gate_passes_a_candidate_that_improves_every_group_alike() -> None:
    golden, recent = gate_sets({"a": 5, "b": 5})
    policy = Policy.of(fairness_fields="region", fairness_margin=0.05, min_recent_examples=30)
    verdict = compare_classifiers(golden, recent, LABELS, policy, resamples=500)
    [reason] = fairness_reasons(verdict)
    assert verdict["passed"] is True and "not widened beyond the margin" in reason, verdict["reasons"]


def test_groups_too_small_are_not_judged_by_the_gate() -> None:
    golden, recent = gate_sets({"a": 0, "b": 25})
    policy = Policy.of(fairness_fields="region", fairness_margin=0.05, fairness_min_group=500)
    verdict = compare_classifiers(golden, recent, LABELS, policy, resamples=200)
    [reason] = fairness_reasons(verdict)
    assert "too few rows per group to judge" in reason


@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        ({"a": {"b": 1}}, "flat"),
        ({"a": [1]}, "flat"),
        ({f"k{i}": i for i in range(33)}, "33 keys"),
        ({"k" * 65: 1}, "1 to 64 characters"),
        ({"": 1}, "1 to 64 characters"),
        ({"a": float("nan")}, "NaN"),
        ({"a": "x" * 5000}, "4096 bytes"),
    ],
)
def test_prediction_metadata_is_flat_and_bounded(metadata: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says) as caught:
        check_prediction_metadata(metadata, Limits(), field="items.3.metadata")
    assert caught.value.field == "items.3.metadata"


def test_scalar_prediction_metadata_is_accepted() -> None:
    check_prediction_metadata({"region": "emea", "age_band": 3, "vip": True, "score": 0.5, "none": None}, Limits())


def test_an_examples_metadata_is_the_predictions_with_the_feedbacks_over_it() -> None:
    event = feedback_event(
        {"id": "f1", "kind": "label", "label": "pos", "prediction_id": "p1", "predicted_label": "neg",
         "metadata": {"region": "emea", "source": "survey"}}
    )  # fmt: skip
    served = replace(event.served, answer={**event.served.answer, "metadata": {"region": "apac", "channel": "web"}})
    merged = replace(event, served=served)
    assert event_metadata(merged) == {"region": "emea", "channel": "web", "source": "survey"}
    assert event_metadata(replace(merged, feedback=replace(merged.feedback, metadata=None))) == {
        "region": "apac",
        "channel": "web",
    }
    assert event_metadata(event) == {"region": "emea", "source": "survey"}  # an answer without metadata
    [example], _ = derive_examples([merged], LABELS)
    assert example.metadata == {"region": "emea", "channel": "web", "source": "survey"}  # slices and the gate read it
