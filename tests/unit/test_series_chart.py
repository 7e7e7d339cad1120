"""The series chart (the fairness panel's gaps per version): every time label is drawn inside
the chart, the last one too (a date and a time at the right edge used to run past it)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from learnloop.dashboard.charts import TICK_CHAR_PX, SeriesPoint, series_chart

T0 = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
TICK = re.compile(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="middle" class="tick">([^<]+)</text>')


@pytest.mark.parametrize("span", [timedelta(minutes=20), timedelta(hours=20), timedelta(days=9), timedelta(0)])
def test_every_time_label_lies_inside_the_chart_in_order(span: timedelta) -> None:
    points = [
        SeriesPoint("parity gap (domain)", T0, 0.1, 0.05, 0.15),
        SeriesPoint("parity gap (domain)", T0 + span, 0.12, 0.06, 0.18),
        SeriesPoint("opportunity gap (domain)", T0 + span, 0.2, None, None),
    ]
    svg = str(series_chart(points, title="largest gap"))
    width = float(re.search(r'viewBox="0 0 ([\d.]+) ', svg).group(1))  # type: ignore[union-attr]
    ticks = [(float(x), text) for x, text in TICK.findall(svg)]
    assert len(ticks) == 5
    for x, text in ticks:
        half = TICK_CHAR_PX * len(text) / 2
        assert x - half >= 0 and x + half <= width, (text, x, width)
    assert [x for x, _ in ticks] == sorted(x for x, _ in ticks)
