"""The model page's panel of what retrains cost and bought: cumulative cost against cumulative
value across retrains (``monitoring.value``), drawn as inline SVG by ``charts.series_chart``."""

from __future__ import annotations

import logging

from learnloop.dashboard.charts import SeriesPoint, series_chart
from learnloop.dashboard.panels import Panel
from learnloop.services import Services

log = logging.getLogger(__name__)


def retrain_value(services: Services, model: str) -> Panel:
    """The report (``services.value``) and its picture; a report that cannot be computed says why."""
    try:
        report = services.value.report(model)
    except Exception as exc:  # a panel never takes the page down
        log.exception("model %s: the retrain value report for the dashboard failed", model)
        return Panel(False, f"the cost and value of retrains could not be computed: {type(exc).__name__}")
    points = report.cumulative()
    cost_name = "cost (cumulative)" if report.priced else "CPU seconds (cumulative)"
    value_name = "value (cumulative)" if report.priced else f"{report.unit} gained (cumulative)"
    series = [SeriesPoint(cost_name, p.at, p.cost) for p in points] + [
        SeriesPoint(value_name, p.at, p.value, p.value_low, p.value_high) for p in points
    ]
    title = "Cumulative cost and value of retrains" + ("" if report.priced else " (unpriced: different units)")
    chart = series_chart(series, title=title, percent=False) if len(points) > 1 else None
    return Panel(True, data={"report": report}, chart=chart)
