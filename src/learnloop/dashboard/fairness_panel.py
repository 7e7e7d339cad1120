"""The fairness panel of a classifier's page: per version, the largest demographic parity and
equal opportunity differences between the groups of each ``fairness_fields`` field on live
feedback (``services.fairness``), drawn at the time each version was made, with their
bootstrap intervals; the newest version's groups in a table below. The service keeps each
report under a digest of what it read, so a page drawn again runs no bootstrap."""

from __future__ import annotations

import logging

from learnloop.dashboard.charts import SeriesPoint, series_chart
from learnloop.dashboard.panels import Panel
from learnloop.evaluation.fairness import DEMOGRAPHIC_PARITY
from learnloop.services import Services

log = logging.getLogger(__name__)
RESAMPLES = 300  # a page load: intervals to about a point, in a fraction of a second per version

_SHORT = {DEMOGRAPHIC_PARITY: "parity gap"}


def fairness(services: Services, model: str) -> Panel:
    try:
        report = services.fairness.report(model, resamples=RESAMPLES)
    except Exception as exc:  # a panel never takes the page down
        log.exception("model %s: fairness for the dashboard failed", model)
        return Panel(False, f"fairness could not be computed: {type(exc).__name__}")
    if not report.fields:
        return Panel(False, "set the policy's fairness_fields (metadata sent with predict, e.g. region) to see gaps")
    points = []
    for v in report.versions:
        at = v.created_at or v.first_at
        if at is None:
            continue
        for f in v.fields:
            for metric in (DEMOGRAPHIC_PARITY, "equal_opportunity"):
                gaps = [g for g in f.gaps if g.metric == metric]
                if not gaps:
                    continue
                top = max(gaps, key=lambda g: g.value)
                name = f"{_SHORT.get(metric, 'opportunity gap')} ({f.field})"
                points.append(SeriesPoint(name, at, top.value, top.low, top.high))
    chart = series_chart(points, title="largest gap between groups per version (95% bootstrap interval)")
    newest = report.versions[0] if report.versions else None
    return Panel(True, data={"report": report, "newest": newest}, chart=chart)
