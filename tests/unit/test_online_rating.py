"""The online mean rating and its alarm (pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from feedback_events import feedback_event
from learnloop.domain import FeedbackEvent
from learnloop.monitoring.ratings import MIN_RATED, newest_ratings, online_rating
from learnloop.tasks.generation.ratings import mean_interval

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def rating(pid: str, value: int, at: int) -> FeedbackEvent:
    row = {"id": f"{pid}-{at}", "prediction_id": pid, "kind": "rating", "rating": value, "predicted_label": "x"}
    return feedback_event(row | {"created_at": T0 + timedelta(seconds=at)})


def test_the_latest_rating_of_each_of_the_newest_answers_counts() -> None:
    events = [rating("a", 5, 9), rating("b", 1, 8), rating("a", 1, 7), rating("c", 4, 6), rating("d", 2, 5)]
    assert newest_ratings(events, 10) == [5, 1, 4, 2]  # a's earlier 1 is overruled by its 5
    assert newest_ratings(events, 2) == [5, 1]


def test_the_mean_has_the_rating_charts_student_t_interval() -> None:
    ratings = [1, 2, 2, 3, 5, 4, 2, 1]
    found = online_rating(ratings, 3, 0.0)
    assert (found.mean, found.ci_low, found.ci_high) == pytest.approx(mean_interval(ratings))
    assert found.version == 3 and found.n == 8 and found.threshold is None and not found.alarm


def test_a_low_mean_alarms_only_when_its_interval_lies_below_the_minimum_from_30_ratings() -> None:
    low = [2, 1, 3, 2, 2, 3] * 5  # mean 2.17, n=30
    alarm = online_rating(low, 1, 3.5)
    assert alarm.alarm and alarm.ci_high is not None and alarm.ci_high < 3.5
    assert "SHOWN BELOW" in alarm.reason and "3.5" in alarm.reason
    assert not online_rating(low[: MIN_RATED - 1], 1, 3.5).alarm  # too few ratings yet
    assert not online_rating(low, 1, 0.0).alarm  # the alarm is off
    near = [3, 4] * 15 + [2, 5]  # mean 3.5: the interval reaches above 3.4
    assert not online_rating(near, 1, 3.4).alarm
    assert not online_rating([], 1, 3.5).alarm and online_rating([], 1, 3.5).mean is None
