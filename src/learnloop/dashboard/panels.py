"""The monitoring panels of the model page: online accuracy (the loop's story) and drift. Each is one small data
function over its service; a panel whose data cannot be computed says why instead of failing
the page."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from markupsafe import Markup

from learnloop.dashboard.charts import Marker, SeriesPoint, series_chart
from learnloop.dashboard.drift_chart import distribution, distribution_chart
from learnloop.dashboard.story_chart import story_chart
from learnloop.domain import DriftCheck
from learnloop.drift.examples import DriftExamples, by_drift
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


def online_accuracy(services: Services, model: str, golden: Mapping[int, float], markers: Sequence[Marker]) -> Panel:
    """The champion's accuracy on live feedback (``services.performance``), and the story of
    every version's: buckets of judged answers with the promotions, rejections and rollbacks
    (``markers``) and each version's ``golden`` accuracy beside it."""
    try:
        data = services.performance.performance(model).to_dict()
        points = services.performance.timeline(model)
    except Exception as exc:  # a panel never takes the page down
        log.exception("model %s: online accuracy for the dashboard failed", model)
        return Panel(False, f"online accuracy could not be computed: {type(exc).__name__}")
    data["buckets"] = len(points)
    return Panel(True, data=data, chart=story_chart(points, golden, markers))


def drift(services: Services, model: str) -> Panel:
    """The newest drift checks of the serving version (``services.drift``), one series per detector."""
    try:
        history = services.drift.history(model, DRIFT_CHECKS)
        checks = [dataclasses.asdict(c) | {"status": c.status, "message": c.message} for c in history]
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
    ranked = by_drift(history[0].results) if history else []
    shown = ranked[0] if ranked else None
    drawn = [d for r in ranked if r.get("drifted") or r is shown if (d := distribution(r)) is not None]
    return Panel(
        True,
        data={
            "latest": latest,
            "checks": len(checks),
            "shown": shown,  # the most drifted detector
            # what each drifted detector compared (a bin or label per row), reference against now
            "distributions": [distribution_chart(d) for d in drawn],
            "examples": _examples(services, model, history[0]) if history else None,
        },
        chart=series_chart(points, title="Drift effect size per detector", percent=False) if points else None,
    )


def _examples(services: Services, model: str, check: DriftCheck) -> DriftExamples | None:
    try:
        return services.drift.examples(model, check)
    except Exception:
        log.exception("model %s: drifted examples for the dashboard failed", model)
        return None
