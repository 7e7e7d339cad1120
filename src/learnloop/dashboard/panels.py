"""The monitoring panels of the model page: online accuracy and drift. Each is one small data
function over its service; a panel whose data cannot be computed says why instead of failing
the page."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from markupsafe import Markup

from learnloop.dashboard.charts import SeriesPoint, series_chart
from learnloop.services import Services

log = logging.getLogger(__name__)
DRIFT_CHECKS = 30


@dataclass(frozen=True)
class Panel:
    available: bool
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    chart: Markup | None = None


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, 12, tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def online_accuracy(services: Services, model: str) -> Panel:
    """The champion's accuracy on live feedback (``services.performance``), with its daily series."""
    try:
        data = services.performance.performance(model, series=True).to_dict()
    except Exception as exc:  # a panel never takes the page down
        log.exception("model %s: online accuracy for the dashboard failed", model)
        return Panel(False, f"online accuracy could not be computed: {type(exc).__name__}")
    points = [
        SeriesPoint(f"v{p['version']}", _when(p["day"]), p["accuracy"], *(p.get("ci") or (None, None)))
        for p in data.get("series") or []
        if p.get("accuracy") is not None
    ]
    chart = series_chart(points, title="Online accuracy per day and version", threshold=data.get("threshold"))
    return Panel(True, data=data, chart=chart)


def drift(services: Services, model: str) -> Panel:
    """The newest drift checks of the serving version (``services.drift``), one series per detector."""
    try:
        checks = [
            dataclasses.asdict(c) | {"status": c.status, "message": c.message}
            for c in services.drift.history(model, DRIFT_CHECKS)
        ]
    except Exception as exc:
        log.exception("model %s: drift history for the dashboard failed", model)
        return Panel(False, f"drift history could not be read: {type(exc).__name__}")
    points = [
        SeriesPoint(str(r.get("detector", "?")), _when(c["created_at"]), float(r["effect_size"]))
        for c in checks
        for r in c.get("results") or []
        if r.get("effect_size") is not None and c.get("created_at") is not None
    ]
    latest = checks[0] if checks else None
    return Panel(
        True,
        data={"latest": latest, "checks": len(checks)},
        chart=series_chart(points, title="Drift effect size per detector", percent=False) if points else None,
    )
