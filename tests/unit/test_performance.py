"""Online accuracy from feedback, the label-free estimate and the drop alarm (pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sklearn.metrics import f1_score

from feedback_events import feedback_event
from learnloop.domain import FeedbackEvent
from learnloop.monitoring.performance import (
    MIN_JUDGED,
    daily_series,
    drop_alarm,
    expected_accuracy,
    online_accuracy,
)

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
LABELS = ("neg", "pos")


def fb(
    pid: str, kind: str, predicted: str, *, at: float = 0, version: int = 1, day: int = 0, **v: Any
) -> FeedbackEvent:
    row: dict[str, Any] = {"id": f"{pid}-{at}", "prediction_id": pid, "kind": kind, "label": None, "thumbs": None}
    row.update(rating=None, predicted_label=predicted, created_at=T0 + timedelta(seconds=at), version=version)
    row.update(route="champion", served_at=T0 + timedelta(days=day))
    row.update(v)
    return feedback_event(row)


def test_online_accuracy_counts_one_outcome_per_prediction_with_a_wilson_interval() -> None:
    rows = [
        fb("1", "label", "pos", label="pos"),
        fb("2", "label", "pos", label="neg"),
        fb("3", "thumbs", "neg", thumbs="up"),
        fb("4", "thumbs", "neg", thumbs="down", at=1),
        fb("4", "label", "neg", label="neg", at=2),  # the label beats the thumbs: right
        fb("5", "rating", "pos", rating=3),  # says nothing
    ]
    acc = online_accuracy(rows, LABELS)
    assert (acc.n, acc.accuracy, acc.unknown) == (4, 0.75, 1)
    assert acc.ci_low is not None and acc.ci_high is not None and acc.ci_low < 0.75 < acc.ci_high
    truth, answers = ["pos", "neg", "neg", "neg"], ["pos", "pos", "neg", "neg"]
    assert acc.n_labelled == 4
    assert acc.macro_f1 == pytest.approx(f1_score(truth, answers, average="macro"))
    assert acc.macro_f1_ci is not None and acc.macro_f1_ci[0] <= acc.macro_f1 <= acc.macro_f1_ci[1]
    assert online_accuracy([], LABELS).accuracy is None


def test_the_drop_alarm_needs_enough_answers_and_a_shown_drop() -> None:
    def acc(right: int, n: int) -> Any:
        rows = [fb(str(i), "thumbs", "pos", thumbs="up" if i < right else "down") for i in range(n)]
        return online_accuracy(rows, LABELS)

    alarm, line, reason = drop_alarm(acc(20, MIN_JUDGED - 1), 0.9, 0.05)
    assert not alarm and line == pytest.approx(0.85) and "needed" in reason
    assert drop_alarm(acc(120, 200), 0.9, 0.05)[0]  # 60%, CI far below 85%
    assert not drop_alarm(acc(166, 200), 0.9, 0.05)[0]  # 83%: below the line, not shown below
    assert not drop_alarm(acc(120, 200), None, 0.05)[0]


def test_daily_series_splits_by_version_and_day_and_the_label_free_estimate() -> None:
    rows = [fb(f"a{i}", "thumbs", "pos", thumbs="up", day=0) for i in range(3)]
    rows += [fb(f"b{i}", "thumbs", "pos", thumbs="down", day=1, version=2) for i in range(2)]
    series = daily_series(rows, LABELS)
    assert [(s["version"], s["day"], s["n"], s["accuracy"]) for s in series] == [
        (1, "2026-05-01", 3, 1.0),
        (2, "2026-05-02", 2, 0.0),
    ]
    # Thumbs up name the label (binary): macro-F1 per day, with its interval.
    assert series[0]["macro_f1"] == pytest.approx(
        f1_score(["pos"] * 3, ["pos"] * 3, labels=LABELS, average="macro", zero_division=0)
    )
    assert expected_accuracy([{"neg": 0.9, "pos": 0.1}, {"neg": 0.4, "pos": 0.6}]) == pytest.approx(0.75)
    assert expected_accuracy([]) is None
