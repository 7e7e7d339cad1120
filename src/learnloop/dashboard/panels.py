"""The monitoring panels of the model page: online accuracy and drift. Each is one small data
function over a service that may not be wired into this server; without it the panel says
"not available" instead of failing the page."""

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


def _plain(value: Any, *properties: str) -> dict[str, Any]:
    """A dict of a result object (``to_dict()``, a dataclass, or a mapping), plus ``properties``."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        out: dict[str, Any] = to_dict()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = dataclasses.asdict(value)
    else:
        out = dict(value)
    return out | {name: getattr(value, name) for name in properties if hasattr(value, name)}


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, 12, tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def online_accuracy(services: Services, model: str) -> Panel:
    """The champion's accuracy on live feedback (``services.performance``), with its daily series."""
    performance = getattr(services, "performance", None)
    if performance is None:
        return Panel(False, "online accuracy is not available on this server")
    try:
        data = _plain(performance.performance(model, series=True))
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
    service = getattr(services, "drift", None)
    history = getattr(service, "history", None)
    if service is None or not callable(history):
        return Panel(False, "drift monitoring is not available on this server")
    try:
        checks = [_plain(c, "status", "message") for c in history(model, DRIFT_CHECKS)]
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
