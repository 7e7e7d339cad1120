"""A verdict leads with the words that decided it: a rejection names the failing checks first
(``rejected: recent feedback NOT shown better (McNemar p=0.73, n=41)``), whatever passed
comes after; a verdict stored before headlines existed gets one from its reasons."""

from __future__ import annotations

import numpy as np

from learnloop.evaluation import judge, paired_comparison
from learnloop.evaluation.generative_gate import NllScores, PreferenceScores, compare_generators
from learnloop.evaluation.headline import p_text, verdict_headline
from learnloop.policy import Policy


def compare(name: str, both_right: int, champion_only: int, candidate_only: int) -> object:
    truth = ["pos"] * (both_right + champion_only + candidate_only)
    champion = ["pos"] * (both_right + champion_only) + ["neg"] * candidate_only
    candidate = ["pos"] * both_right + ["neg"] * champion_only + ["pos"] * candidate_only
    return paired_comparison(name, truth, champion, candidate)


def test_a_rejection_leads_with_the_failing_check_and_leaves_the_passing_ones_out() -> None:
    golden = compare("golden", 190, 0, 0)
    recent = compare("recent", 30, 6, 5)  # n=41: 5 wins, 6 losses
    verdict = judge(golden, recent, Policy())  # type: ignore[arg-type]
    assert not verdict.passed
    assert verdict.headline == "rejected: recent feedback NOT shown better (-2.4 pts, McNemar p=0.73, n=41)"
    assert verdict.to_dict()["headline"] == verdict.headline  # stored with the verdict
    assert verdict.reasons[0].startswith("golden set (n=190)")  # every check is still in the reasons


def test_too_little_feedback_and_a_failed_golden_check_are_both_named() -> None:
    golden = compare("golden", 100, 40, 0)
    verdict = judge(golden, compare("recent", 3, 0, 1), Policy())  # type: ignore[arg-type]
    head = verdict.headline
    assert head.startswith("rejected: golden set NOT shown non-inferior (-28.6 pts, CI low ")
    assert head.endswith("; recent feedback too little to judge (n=4, 30 required)")


def test_a_pass_names_every_deciding_check() -> None:
    verdict = judge(compare("golden", 190, 0, 2), compare("recent", 30, 0, 12), Policy())  # type: ignore[arg-type]
    assert verdict.passed
    assert verdict.headline.startswith("passed: golden set non-inferior (+1.0 pts")
    assert "; recent feedback better (+28.6 pts, McNemar p<0.001, n=42)" in verdict.headline


def test_a_generative_rejection_leads_with_its_failing_check() -> None:
    rng = np.random.default_rng(3)
    champion = rng.normal(1.5, 0.2, 30)
    fit = NllScores(list(champion), list(champion + 0.2), [50] * 30)  # the candidate fits worse
    good = PreferenceScores([-1.0] * 30 + [1.0] * 2, [1.0] * 30 + [-1.0] * 2)
    verdict = compare_generators(good, fit, None, Policy())
    assert not verdict["passed"]
    assert verdict["headline"].startswith("rejected: ")
    assert "NLL per token" in verdict["headline"] and "held-out preference" not in verdict["headline"]


def test_a_verdict_stored_before_headlines_gets_one_from_its_failing_reasons() -> None:
    stored = {
        "passed": False,
        "reasons": [
            "golden set (n=199): +0.0 pts ...: non-inferior",
            "recent feedback, forward-chained (n=41): ... McNemar exact one-sided p=0.7256 vs alpha 0.05: "
            "NOT shown better",
        ],
    }
    assert verdict_headline(stored) == "rejected: " + stored["reasons"][1]  # type: ignore[operator]
    assert verdict_headline({"passed": True, "reasons": ["no champion to compare with"]}) == (
        "passed: no champion to compare with"
    )
    assert verdict_headline({"passed": False, "headline": "rejected: x", "reasons": ["y NOT z"]}) == "rejected: x"


def test_p_values_read_as_a_person_reads_them() -> None:
    assert [p_text(p) for p in (0.7256, 0.05, 0.0123, 0.00049)] == ["p=0.73", "p=0.05", "p=0.012", "p<0.001"]


def test_the_dashboard_shows_the_stored_headline_beside_its_badge() -> None:
    from learnloop.dashboard.views import verdict_words

    both = "rejected: golden set NOT shown non-inferior (...); recent feedback NOT shown better (...)"
    assert verdict_words({"passed": False, "headline": both, "reasons": ["a", "b"]}) == both.removeprefix("rejected: ")
    old = {"passed": False, "reasons": ["golden set: non-inferior", "recent feedback: NOT shown better"]}
    assert verdict_words(old) == "recent feedback: NOT shown better"  # the failing check, not the first reason
    assert verdict_words({"passed": True, "reasons": []}) == ""  # the badge says it all
