"""The rating charts of a generative model's page (pure SVG functions): escaped, drawable with
no data, one point, or a marker outside the ratings' span."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from learnloop.dashboard.charts import Marker
from learnloop.dashboard.rating_chart import rating_distribution, rating_series
from learnloop.tasks.generation.ratings import RatingPoint

T0 = datetime(2026, 3, 2, tzinfo=UTC)
DAY = timedelta(days=1)


def test_no_ratings_draw_an_empty_chart_and_empty_bars() -> None:
    assert "no ratings yet" in rating_series([], [], DAY)
    bars = rating_distribution(dict.fromkeys(range(1, 6), 0))
    assert bars.count('<g class="bar') == 5 and "0 (-)" in bars


def test_a_point_draws_with_its_interval_and_markers_inside_its_span_only() -> None:
    points = [RatingPoint(1, T0, 3, 4.0, 3.0, 5.0), RatingPoint(2, T0 + DAY, 1, 2.0, None, None)]
    markers = [
        Marker(T0 - 10 * DAY, "promoted", "v1 promoted long ago"),
        Marker(T0 + DAY, "promoted", "v2 promoted by <script>"),
        Marker(T0 + 1.5 * DAY, "rolled_back", "v2 rolled back"),
    ]
    svg = rating_series(points, markers, DAY)
    assert svg.count('<g class="point">') == 2 and svg.count('class="marker') == 2
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "mean 4.00 of 3 ratings, 95% CI 3.00 to 5.00" in svg and "mean 2.00 of 1 ratings<" in svg
    assert "02 Mar" in svg and "04 Mar" in svg and "per version and day" in svg
