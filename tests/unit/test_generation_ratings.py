"""What users said about generated answers, summed up for the dashboard (pure logic):
counts by kind, preferences by source, the mean rating per version and time bucket with a
Student-t interval."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import pytest

from generation_feedback import at, correction, implicit, prefer, rating, served, standalone, thumbs
from learnloop.tasks.generation.ratings import bucket_for, mean_interval, summarize_feedback

HOUR = 3600.0


def test_feedback_is_counted_by_kind_and_preferences_by_the_source_of_each_side() -> None:
    a = served("p1", "Down the road.")
    a = replace(a, answer={**a.answer, "source_model": "claude-sonnet"})
    b = served("p2", "I cannot say.", version=2)
    events = [
        rating(a, 5),
        rating(a, 4),
        rating(b, 1),
        thumbs(a, True),
        thumbs(b, False),
        correction(b, "By the well."),
        implicit(a, "copied"),
        implicit(a, "copied"),
        implicit(b, "regenerated"),
        prefer(a, b),
        prefer(a, b),
        prefer(b, a),
        standalone("Hello?", "Well met!", "Go away."),
        replace(prefer(a, b), related=None),  # the rejected answer is not logged yet
    ]
    summary = summarize_feedback(events)
    assert summary.ratings == {1: 1, 2: 0, 3: 0, 4: 1, 5: 1}
    assert summary.rated == 3 and summary.mean_rating == pytest.approx(10 / 3)
    assert summary.thumbs == {"up": 1, "down": 1}
    assert summary.implicit == {"copied": 2, "regenerated": 1}
    assert summary.corrections == 1
    prefs = {(p.chosen, p.rejected): p.n for p in summary.preferences}
    assert prefs == {
        ("claude-sonnet", "v2"): 2,
        ("v2", "claude-sonnet"): 1,
        ("standalone", "standalone"): 1,
        ("claude-sonnet", "not logged yet"): 1,
    }
    assert summary.preferences[0].n == 2  # most common first


def test_no_feedback_is_an_empty_summary() -> None:
    summary = summarize_feedback([])
    assert summary.rated == 0 and summary.mean_rating is None and summary.rating_series == ()


def test_the_rating_series_is_the_mean_per_version_and_bucket_with_its_t_interval() -> None:
    one, two = served("p1", "answer", version=1), served("p2", "answer", version=2)
    events = [
        rating(one, 5, when=0.1 * HOUR),
        rating(one, 3, when=0.5 * HOUR),
        rating(two, 4, when=0.7 * HOUR),
        rating(one, 2, when=5.2 * HOUR),
        rating(one, 4, when=30 * HOUR),  # 30 hours: hour buckets
    ]
    summary = summarize_feedback(events)
    assert summary.bucket == timedelta(hours=1)
    points = [(p.version, p.start, p.n, p.mean) for p in summary.rating_series]
    assert points == [(1, at(0), 2, 4.0), (2, at(0), 1, 4.0), (1, at(5 * HOUR), 1, 2.0), (1, at(30 * HOUR), 1, 4.0)]
    first = summary.rating_series[0]
    half = 12.706 * math.sqrt(2) / math.sqrt(2)  # t(0.975, 1) * s / sqrt(n), s = sqrt(2)
    assert (first.low, first.high) == (1, 5)  # 4 -+ 12.7: clipped to the scale
    assert 4 - half < 1
    assert all(p.low is None and p.high is None for p in summary.rating_series[1:])


def test_a_rating_on_an_answer_not_logged_yet_counts_but_draws_no_point() -> None:
    pending = replace(rating(served("p1", "x"), 4), served=None)
    summary = summarize_feedback([pending])
    assert summary.ratings[4] == 1 and summary.rating_series == ()


@pytest.mark.parametrize(
    ("ratings", "expected"),
    [
        ([4], (4.0, None, None)),
        ([3, 3, 3], (3.0, 3.0, 3.0)),
        ([3, 4] * 10, (3.5, 3.5 - 2.0930 * 0.51299 / math.sqrt(20), 3.5 + 2.0930 * 0.51299 / math.sqrt(20))),
        ([1, 5, 2, 4], (3.0, 1.0, 5.0)),  # 3 -+ 2.9: clipped to 1-5
    ],
)
def test_the_interval_is_students_t_inside_the_scale(
    ratings: list[int], expected: tuple[float, float | None, float | None]
) -> None:
    mean, low, high = mean_interval(ratings)
    assert mean == pytest.approx(expected[0])
    for got, want in ((low, expected[1]), (high, expected[2])):
        assert got == (None if want is None else pytest.approx(want, abs=1e-3))


def test_the_bucket_keeps_the_series_to_at_most_thirty_points() -> None:
    assert bucket_for([]) == timedelta(minutes=1)
    assert bucket_for([at(0), at(20 * 60)]) == timedelta(minutes=1)
    assert bucket_for([at(0), at(2 * HOUR)]) == timedelta(hours=1)
    assert bucket_for([at(0), at(29 * 24 * HOUR)]) == timedelta(days=1)
    assert bucket_for([at(0), at(200 * 24 * HOUR)]) == timedelta(weeks=1)
    assert bucket_for([at(0), at(5000 * 24 * HOUR)]) == timedelta(days=30)


def test_times_without_a_zone_are_bucketed_too() -> None:
    event = rating(served("p1", "x"), 4, when=HOUR + 5)
    naive = replace(event, feedback=replace(event.feedback, created_at=event.created_at.replace(tzinfo=None)))
    (point,) = summarize_feedback([naive]).rating_series
    assert point.start == at(HOUR).replace(tzinfo=None) and point.mean == 4.0  # one rating: minute buckets
