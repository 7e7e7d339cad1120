"""Choosing a candidate on the training side only: the selection's folds never judge (or fit
on) what the gate judges, the winner is the best pooled score, and a tie goes to the model's
own family."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnloop.policy import Policy
from learnloop.selection import (
    CandidateRecord,
    Selection,
    SelectionData,
    StudyPlace,
    beside_update,
    candidate_specs,
    choose,
    score_folds,
    score_updates,
)
from learnloop.tasks.classification.labels import LabelledExample
from learnloop.tasks.classification.select import selection_data
from learnloop.tasks.classification.snapshot import build_snapshot

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _text(i: int, kind: str) -> str:
    """Texts far apart (no two are near duplicates)."""
    return f"{kind} {hashlib.sha256(f'{kind}{i}'.encode()).hexdigest()[:32]}"


def _feedback(n: int) -> list[LabelledExample]:
    return [
        LabelledExample(
            _text(i, "feedback"),
            "pos" if i % 2 else "neg",
            "feedback:label",
            created_at=T0 + timedelta(seconds=i),
        )
        for i in range(n)
    ]


@settings(max_examples=40, deadline=None)
@given(
    boot=st.integers(0, 60),
    n=st.integers(0, 120),
    seen=st.integers(0, 120),
    blocks=st.integers(2, 6),
    most=st.integers(2, 80),
    recent_blocks=st.integers(2, 6),
)
def test_the_selection_folds_never_touch_the_gates_evidence(
    boot: int, n: int, seen: int, blocks: int, most: int, recent_blocks: int
) -> None:
    policy = Policy.of(selection_blocks=blocks, selection_max=most, recent_blocks=recent_blocks)
    snap = build_snapshot(
        bootstrap=[(_text(i, "bootstrap"), "pos" if i % 3 else "neg") for i in range(boot)],
        feedback=_feedback(n),
        golden_texts=[],
        champion_cutoff=T0 + timedelta(seconds=seen - 0.5) if seen else None,
        cutoff=T0 + timedelta(hours=1),
        policy=policy,
    )
    data = selection_data(policy.selection, ("neg", "pos"), snap, None)
    judged_by_gate = {ex.text for ex in snap.recent}
    assert len(data.texts) == snap.first_judged
    assert not judged_by_gate & set(data.texts)
    for fit_on, evaluate in data.folds:
        assert max(fit_on, default=-1) < min(evaluate) and len(evaluate) >= 1  # forward: fitted on the past only
    assert data.judged <= most


def _data() -> SelectionData:
    texts = [f"{'great lovely fine' if i % 2 else 'awful bad poor'} item {i}" for i in range(60)]
    labels = ["pos" if i % 2 else "neg" for i in range(60)]
    return SelectionData(
        texts, labels, ["neg", "pos"], [(list(range(20)), list(range(20, 40))), (list(range(40)), list(range(40, 60)))]
    )


def test_a_tie_goes_to_the_models_own_family_and_every_candidate_is_recorded() -> None:
    policy = Policy.of(candidate_families="incremental").selection
    specs = candidate_specs("tfidf-logreg", {}, policy)
    chosen = choose(specs, _data(), policy, study=StudyPlace("", "t"))
    assert [c.fold_scores for c in chosen.candidates] == [[1.0, 1.0], [1.0, 1.0]]  # both perfect: a tie
    assert chosen.family == "tfidf-logreg" and [c.chosen for c in chosen.candidates] == [True, False]
    assert "tie" in chosen.reason and "incremental 100.0%" in chosen.reason


def test_a_candidate_that_fails_is_recorded_with_its_error_and_the_rest_still_compete() -> None:
    policy = Policy.of(candidate_families="incremental").selection
    specs = candidate_specs("tfidf-logreg", {"min_df": 1000}, policy)  # no term in 1000 texts: the fit fails
    chosen = choose(specs, _data(), policy, study=StudyPlace("", "t"))
    assert chosen.family == "incremental"
    failed = chosen.candidates[0]
    assert failed.family == "tfidf-logreg" and failed.score is None and failed.error and not failed.chosen
    assert "failed: tfidf-logreg" in chosen.reason


def test_a_search_starts_from_the_given_parameters_and_never_ends_below_them() -> None:
    policy = Policy.of(search_families="tfidf-logreg", search_budget_seconds=30, search_trials=4).selection
    specs = candidate_specs("tfidf-logreg", {}, policy)
    chosen = choose(specs, _data(), policy, study=StudyPlace("", "in-memory"))
    record = chosen.candidates[0]
    assert record.searched and record.trials == 4 and record.score == pytest.approx(1.0)


def test_an_update_and_a_refit_compete_a_tie_going_to_the_update() -> None:
    policy = Policy().selection
    specs = beside_update(candidate_specs("incremental", {}, policy), "incremental")
    assert [(s.family, s.update) for s in specs] == [("incremental", True), ("incremental", False)]
    chosen = choose(specs, replace(_data(), update_size=10), policy, study=StudyPlace("", "t"))
    assert [(c.update, c.fold_scores) for c in chosen.candidates] == [(True, [1.0, 1.0]), (False, [1.0, 1.0])]
    assert chosen.update and [c.chosen for c in chosen.candidates] == [True, False]
    assert "incremental update 100.0%" in chosen.reason and "incremental refit 100.0%" in chosen.reason


def _shifted() -> SelectionData:
    """Sixty restaurant sentences, then sixty about phones whose words the first never use:
    the last fold judges phones after a model fitted mostly on restaurants."""
    old = [(f"{'lovely tasty' if i % 2 else 'bland stale'} dinner {i}", "pos" if i % 2 else "neg") for i in range(60)]
    new = [(f"{'crisp sturdy' if i % 2 else 'flimsy dead'} battery {i}", "pos" if i % 2 else "neg") for i in range(60)]
    rows = old + new
    folds = [(list(range(k)), list(range(k, k + 20))) for k in (60, 80, 100)]
    return SelectionData([t for t, _ in rows], [lab for _, lab in rows], ["neg", "pos"], folds, update_size=10)


def test_an_updates_folds_replay_the_chain_of_updates_not_a_refit() -> None:
    """On each fold the update candidate is a fit from scratch on the older rows continued by
    updates of ``update_size`` rows: here its chain sees the phones only through updates, so
    its scores differ from the refit's on the folds that judge phones."""
    data = _shifted()
    refit = score_folds("incremental", {}, data)
    chained = score_updates("incremental", {}, data)
    assert len(chained.scores) == len(refit.scores) == 3 and chained.judged == refit.judged == 60
    alone = score_updates("incremental", {}, data, updates=0)  # no update: the fit from scratch
    assert alone.scores == refit.scores
    assert chained.scores != refit.scores


def test_a_refit_chosen_over_the_update_does_not_continue_the_champion() -> None:
    record = CandidateRecord("incremental", {}, False, [1.0], 1.0, update=True)
    refit = CandidateRecord("incremental", {}, False, [1.0], 1.0, chosen=True)
    assert Selection("incremental", {}, "", [record, refit], 1, 20, update=False).refit_over_update
    won = replace(record, chosen=True)
    lost = replace(refit, chosen=False)
    assert not Selection("incremental", {}, "", [won, lost], 1, 20, update=True).refit_over_update
    other = CandidateRecord("tfidf-logreg", {}, False, [1.0], 1.0, chosen=True)
    assert not Selection("tfidf-logreg", {}, "", [other], 1, 20).refit_over_update  # no update was tried
