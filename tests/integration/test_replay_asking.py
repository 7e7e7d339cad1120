"""A replay whose simulated users label what the loop asks about: the same budget as random
feedback, spent on the answers the model was least sure of."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from learnloop.datasets.shipped import uci_sentiment_path
from learnloop.errors import ValidationError
from learnloop.replay import DataFile, ReplayConfig, ReplayResult, UserModel, run_replay


def shipped(domain: str) -> DataFile:
    return DataFile(uci_sentiment_path(domain), "0", "1", "tsv", header=False, name=domain)


def replay(out: Path, selection: str) -> ReplayResult:
    config = ReplayConfig(
        bootstrap=shipped("yelp"),
        stream=[shipped("imdb")],
        out=out,
        limit_per_segment=300,
        users=UserModel(feedback_rate=0.2, selection=selection),
        oracle_every=300,
        seed=3,
    )
    return run_replay(config)


def asked_margins(result: ReplayResult) -> list[float]:
    trace = result.trace
    position = {item: i for i, item in enumerate(trace.items)}
    return [trace.margins[position[item]] for item in trace.feedback_item]


def test_uncertain_users_label_only_answers_below_the_random_median_margin(tmp_path: Path) -> None:
    random_run = replay(tmp_path / "random", "random")
    uncertain_run = replay(tmp_path / "uncertain", "uncertain")

    random_margins, uncertain_margins = asked_margins(random_run), asked_margins(uncertain_run)
    # The same budget: 0.2 labels per served item (random: drawn per item; uncertain: exactly).
    assert len(uncertain_margins) == 60
    assert abs(len(random_margins) - 60) <= 20
    median = statistics.median(random_margins)
    assert max(uncertain_margins) < median, (max(uncertain_margins), median)
    assert uncertain_run.summary["feedback"]["median_margin"] < random_run.summary["feedback"]["median_margin"]
    assert uncertain_run.summary["config"]["users"]["selection"] == "uncertain"
    # Within a round of 20 answers the 4 asked about are the 4 smallest margins.
    trace = uncertain_run.trace
    asked = set(trace.feedback_item)
    for start in range(0, 300, 20):
        round_ = [(trace.margins[i], trace.items[i] in asked) for i in range(start, start + 20)]
        ranked = sorted(round_)
        assert all(was_asked for _, was_asked in ranked[:4]) and not any(was_asked for _, was_asked in ranked[4:])


def test_an_unknown_selection_is_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        UserModel(selection="loudest")
    assert refused.value.field == "selection"
