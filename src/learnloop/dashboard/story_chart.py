"""The loop's story as inline SVG: the serving version's accuracy on live feedback, bucket by
bucket of judged answers (``monitoring.timeline``), each version in its colour with its
golden-set accuracy as a dashed line beside it, and the promotions, rejections and rollbacks
where they happened.

The x axis counts judged answers in the order they were served, not clock time: a quiet week
takes no room and a busy hour all it needs, so the chart zooms to where things happened; the
time of each tick is written under it. An event is placed among the answers served around it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

from markupsafe import Markup

from learnloop.dashboard.charts import (
    BAD,
    GOOD,
    MUTED,
    Marker,
    _accuracy_range,
    _f,
    _pct,
    _Scale,
    _svg,
    _y_grid,
    path_d,
)
from learnloop.dashboard.version_charts import SERIES
from learnloop.monitoring.timeline import AccuracyPoint

REJECTED = "#b45309"
MARKER_COLOURS = {"promoted": GOOD, "rolled_back": BAD, "rejected": REJECTED}


def rank_at(points: Sequence[AccuracyPoint], at: datetime) -> float:
    """How many judged answers were served before ``at`` (interpolated inside a bucket)."""
    if not points:
        return 0.0
    for p in points:
        if at <= p.start:
            return float(p.first)
        if at <= p.end:
            span = (p.end - p.start).total_seconds() or 1.0
            return p.first + p.n * (at - p.start).total_seconds() / span
    return float(points[-1].first + points[-1].n)


def _time_label(at: datetime, first: datetime, last: datetime) -> str:
    span = (last - first).total_seconds()
    return f"{at:%H:%M:%S}" if span < 3600 else f"{at:%d %b %H:%M}" if span < 7 * 86400 else f"{at:%d %b}"


def story_chart(points: Sequence[AccuracyPoint], golden: Mapping[int, float], markers: Sequence[Marker]) -> Markup:
    width, height, left, right, top, bottom = 860, 330, 52, 840, 40, 250
    title = "The loop's story: the serving version's accuracy on live feedback, with promotions and rejections"
    if not points:
        return _svg(width, 60, "story-chart", title, ['<text x="20" y="34" class="empty">no judged answers yet</text>'])
    total = points[-1].first + points[-1].n
    x = _Scale(0, max(total, 1), left + 8, right - 8)
    versions = list(dict.fromkeys(p.version for p in points))
    values = [v for p in points for v in (p.accuracy, p.ci_low, p.ci_high)]
    values += [golden[v] for v in versions if v in golden]
    y = _Scale(*_accuracy_range(values), bottom, top)
    body = _y_grid(y, left, right)
    body += _ticks(points, x, total, bottom)
    for i, version in enumerate(versions):
        body += _version_series(version, [p for p in points if p.version == version], golden.get(version), i, x, y)
    body += _markers(points, markers, x, top, bottom)
    body += _legend(versions, height)
    return _svg(width, height, "story-chart", title, body)


def _ticks(points: Sequence[AccuracyPoint], x: _Scale, total: int, bottom: float) -> list[str]:
    body = []
    first, last = points[0].start, points[-1].end
    for i in range(6):
        rank = round(total * i / 5)
        bucket = next((p for p in points if p.first + p.n >= rank), points[-1])
        tx, anchor = x(rank), "start" if i == 0 else "end" if i == 5 else "middle"
        body.append(f'<text x="{_f(tx)}" y="{bottom + 15}" text-anchor="{anchor}" class="tick">{rank}</text>')
        body.append(
            f'<text x="{_f(tx)}" y="{bottom + 28}" text-anchor="{anchor}" class="tick">'
            f"{escape(_time_label(bucket.end if rank else bucket.start, first, last))}</text>"
        )
    body.append(
        f'<text x="{_f((x(0) + x(total)) / 2)}" y="{bottom + 43}" text-anchor="middle" class="legend">'
        "judged answers, in the order served (time under each count)</text>"
    )
    return body


def _version_series(
    version: int, points: Sequence[AccuracyPoint], golden: float | None, i: int, x: _Scale, y: _Scale
) -> list[str]:
    colour = SERIES[i % len(SERIES)]
    body = []
    x0, x1 = x(points[0].first), x(points[-1].first + points[-1].n)
    if golden is not None:
        body.append(
            f'<g class="golden-line"><title>v{version}: golden-set accuracy {_pct(golden)}</title>'
            f'<line x1="{_f(x0)}" x2="{_f(x1)}" y1="{_f(y(golden))}" y2="{_f(y(golden))}" stroke="{colour}" '
            'stroke-dasharray="6 4" stroke-opacity="0.7"/></g>'
        )
    d = path_d((x(p.first + p.n / 2), y(p.accuracy)) for p in points)
    body.append(f'<path class="line" d="{d}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
    for p in points:
        px = x(p.first + p.n / 2)
        tip = (
            f"v{version}: {_pct(p.accuracy)} of {p.n} judged answers (95% CI {_pct(p.ci_low)} to {_pct(p.ci_high)}), "
            f"served {p.start:%Y-%m-%d %H:%M:%S} to {p.end:%H:%M:%S}"
        )
        body.append(
            f'<g class="point"><title>{escape(tip)}</title>'
            f'<line x1="{_f(px)}" x2="{_f(px)}" y1="{_f(y(p.ci_low))}" y2="{_f(y(p.ci_high))}" stroke="{colour}" '
            f'stroke-opacity="0.35"/><circle cx="{_f(px)}" cy="{_f(y(p.accuracy))}" r="3.5" fill="{colour}"/></g>'
        )
    body.append(
        f'<text x="{_f((x0 + x1) / 2)}" y="{_f(y.b + 12)}" text-anchor="middle" class="band-label">v{version}</text>'
    )
    return body


def _markers(
    points: Sequence[AccuracyPoint], markers: Sequence[Marker], x: _Scale, top: float, bottom: float
) -> list[str]:
    body: list[str] = []
    taken: list[float] = []  # where triangles are: events at the same place are drawn side by side
    for m in sorted(markers, key=lambda m: m.at):
        mx = x(rank_at(points, m.at))
        tx = mx + 12 * sum(1 for t in taken if abs(t - mx) < 1)
        taken.append(mx)
        colour = MARKER_COLOURS.get(m.kind, MUTED)
        fill = "#fff" if m.kind == "rejected" else colour
        body.append(
            f'<g class="marker {escape(m.kind)}"><title>{escape(m.text)}</title>'
            f'<line x1="{_f(mx)}" x2="{_f(mx)}" y1="{top}" y2="{bottom}" stroke="{colour}" stroke-dasharray="4 3"/>'
            f'<path d="M{_f(tx - 5)},{top - 9} L{_f(tx + 5)},{top - 9} L{_f(tx)},{top} Z" fill="{fill}" '
            f'stroke="{colour}" stroke-width="1.4"/></g>'
        )
    return body


def _legend(versions: Sequence[int], height: int) -> list[str]:
    body, lx = [], 52
    items = [(SERIES[i % len(SERIES)], f"v{v}") for i, v in enumerate(versions)]
    items += [(GOOD, "promoted"), (REJECTED, "rejected by the gate"), (BAD, "rolled back")]
    for colour, text in items:
        body.append(f'<rect x="{lx}" y="{height - 22}" width="10" height="10" fill="{colour}"/>')
        body.append(f'<text x="{lx + 14}" y="{height - 13}" class="legend">{escape(text)}</text>')
        lx += 24 + 7 * len(text)
    body.append(
        f'<text x="840" y="{height - 13}" text-anchor="end" class="legend muted">dashed: golden-set accuracy</text>'
    )
    return body
