"""Charts drawn on the server as inline SVG: the learning curve, a rollout's statistics, a
series of accuracies with intervals, and progress bars. Pure functions of plain data; every
text that goes into the SVG is escaped here, so the result is safe to insert as ``Markup``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from markupsafe import Markup

# Colours (also in dashboard.css): golden, recent, promotion, rollback, neutral.
GOLDEN = "#2563eb"
RECENT = "#d97706"
GOOD = "#16a34a"
BAD = "#dc2626"
MUTED = "#6b7280"
GRID = "#e5e7eb"
BANDS = ("#f1f5f9", "#e0f2fe")
TICK_CHAR_PX = 6.5  # the widest a character of a tick label (11 px system-ui, dashboard.css) is drawn


@dataclass(frozen=True)
class Interval:
    value: float
    low: float | None
    high: float | None


@dataclass(frozen=True)
class VersionPoint:
    version: int
    at: datetime
    status: str
    golden: Interval | None
    recent: Interval | None


@dataclass(frozen=True)
class ChampionPeriod:
    version: int
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Marker:
    at: datetime
    kind: str  # "promoted" | "rolled_back"
    text: str


@dataclass(frozen=True)
class SeriesPoint:
    """One point of a series (online accuracy per day, a drift effect per check)."""

    series: str
    at: datetime
    value: float
    low: float | None = None
    high: float | None = None


class _Scale:
    def __init__(self, lo: float, hi: float, a: float, b: float) -> None:
        self.lo, self.hi, self.a, self.b = lo, hi, a, b

    def __call__(self, v: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.a + (v - self.lo) / span * (self.b - self.a)


def _f(x: float) -> str:
    return f"{x:.1f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _svg(width: int, height: int, css_class: str, title: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart {escape(css_class)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _time_ticks(lo: datetime, hi: datetime, count: int = 5) -> list[tuple[datetime, str]]:
    span = (hi - lo).total_seconds()
    fmt = "%H:%M:%S" if span < 3600 else "%d %b %H:%M" if span < 3 * 86400 else "%d %b"
    return [
        (lo + timedelta(seconds=span * i / (count - 1)), (lo + timedelta(seconds=span * i / (count - 1))).strftime(fmt))
        for i in range(count)
    ]


def _accuracy_range(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    lo = max(0.0, math.floor((min(values) - 0.02) * 20) / 20)
    hi = min(1.0, math.ceil((max(values) + 0.02) * 20) / 20)
    return (lo, hi) if hi > lo else (max(0.0, lo - 0.05), min(1.0, hi + 0.05))


def _y_grid(y: _Scale, left: float, right: float, *, percent: bool = True) -> list[str]:
    out = []
    if percent:
        step = 0.05 if y.hi - y.lo <= 0.3 else 0.1
    else:  # 1, 2 or 5 times a power of ten: four to ten lines
        rough = (y.hi - y.lo) / 4 or 1.0
        power = 10 ** math.floor(math.log10(rough))
        step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    v = math.ceil(y.lo / step - 1e-9) * step
    while v <= y.hi + 1e-9:
        text = f"{100 * v:.0f}%" if percent else f"{v:.3g}"
        out.append(f'<line x1="{_f(left)}" x2="{_f(right)}" y1="{_f(y(v))}" y2="{_f(y(v))}" stroke="{GRID}"/>')
        out.append(f'<text x="{_f(left - 6)}" y="{_f(y(v) + 4)}" text-anchor="end" class="tick">{text}</text>')
        v += step
    return out


def path_d(xy: Iterable[tuple[float, float]]) -> str:
    """An SVG path through the points, in drawing coordinates."""
    return " ".join(f"{'L' if i else 'M'}{_f(px)},{_f(py)}" for i, (px, py) in enumerate(xy))


def _whisker(x: float, y: _Scale, iv: Interval, colour: str) -> str:
    if iv.low is None or iv.high is None:
        return ""
    return f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(y(iv.low))}" y2="{_f(y(iv.high))}" stroke="{colour}"/>'


def learning_curve(
    points: Sequence[VersionPoint],
    periods: Sequence[ChampionPeriod],
    markers: Sequence[Marker],
) -> Markup:
    """Golden and recent accuracy of every version (95% intervals as whiskers) over time, the
    champion of each period as shaded bands, promotions and rollbacks as vertical lines. The
    axis ends at the last thing that happened, not now: a model quiet for months still shows
    its versions apart (the current champion's band runs to the edge)."""
    width, height, left, right, top, bottom = 860, 320, 52, 840, 34, 262
    title = "Learning curve: accuracy of each version over time"
    if not points:
        return _svg(width, 80, "learning-curve", title, ['<text x="20" y="40" class="empty">no versions yet</text>'])
    times = [p.at for p in points] + [p.start for p in periods] + [m.at for m in markers]
    t0, t1 = min(times), max(times)
    if (t1 - t0).total_seconds() < 1:
        t1 = t0 + timedelta(seconds=1)
    pad = (t1 - t0) * 0.03
    t0, t1 = t0 - pad, t1 + pad
    x = _Scale(t0.timestamp(), t1.timestamp(), left, right)
    values = [
        v
        for p in points
        for iv in (p.golden, p.recent)
        if iv is not None
        for v in (iv.value, iv.low, iv.high)
        if v is not None
    ]
    y = _Scale(*_accuracy_range(values), bottom, top)
    body: list[str] = []
    for i, period in enumerate(periods):
        x0, x1 = x(period.start.timestamp()), min(x(period.end.timestamp()), right)
        body.append(
            f'<rect class="band" x="{_f(x0)}" y="{top}" width="{_f(max(x1 - x0, 1))}" height="{bottom - top}" '
            f'fill="{BANDS[i % 2]}"><title>champion: version {period.version}</title></rect>'
        )
        if x1 - x0 > 24:
            body.append(
                f'<text x="{_f((x0 + x1) / 2)}" y="{top - 8}" text-anchor="middle" class="band-label">'
                f"champion v{period.version}</text>"
            )
    body += _y_grid(y, left, right)
    for at, text in _time_ticks(t0 + pad, t1 - pad):
        body.append(
            f'<text x="{_f(x(at.timestamp()))}" y="{bottom + 16}" text-anchor="middle" class="tick">'
            f"{escape(text)}</text>"
        )
    for m in markers:
        mx = x(m.at.timestamp())
        colour = GOOD if m.kind == "promoted" else BAD
        body.append(
            f'<g class="marker {escape(m.kind)}"><title>{escape(m.text)}</title>'
            f'<line x1="{_f(mx)}" x2="{_f(mx)}" y1="{top}" y2="{bottom}" stroke="{colour}" stroke-dasharray="4 3"/>'
            f'<path d="M{_f(mx - 5)},{bottom + 2} L{_f(mx + 5)},{bottom + 2} L{_f(mx)},{bottom - 6} Z" '
            f'fill="{colour}"/></g>'
        )
    ordered = sorted(points, key=lambda p: p.at)
    for name, colour, offset in (("golden", GOLDEN, -3.0), ("recent", RECENT, 3.0)):
        series = [(p, getattr(p, name)) for p in ordered if getattr(p, name) is not None]
        if len(series) > 1:
            d = " ".join(
                f"{'M' if i == 0 else 'L'}{_f(x(p.at.timestamp()) + offset)},{_f(y(iv.value))}"
                for i, (p, iv) in enumerate(series)
            )
            body.append(f'<path class="line {name}" d="{d}" fill="none" stroke="{colour}" stroke-opacity="0.5"/>')
        for p, iv in series:
            px = x(p.at.timestamp()) + offset
            filled = p.status in ("champion", "retired", "challenger", "candidate")
            tip = (
                f"version {p.version} ({p.status}), {name} accuracy {_pct(iv.value)}"
                + (f", 95% CI {_pct(iv.low)} to {_pct(iv.high)}" if iv.low is not None else "")
                + f", {p.at:%Y-%m-%d %H:%M:%S}"
            )
            body.append(f'<g class="point {name}"><title>{escape(tip)}</title>{_whisker(px, y, iv, colour)}')
            body.append(
                f'<circle cx="{_f(px)}" cy="{_f(y(iv.value))}" r="4.5" stroke="{colour}" stroke-width="1.6" '
                f'fill="{colour if filled else "#fff"}"/></g>'
            )
        labelled = {c.version for c in periods} | {ordered[-1].version}
        for p, iv in [(p, iv) for p, iv in series if p.version in labelled] if name == "golden" else []:
            body.append(
                f'<text x="{_f(x(p.at.timestamp()))}" y="{_f(y(iv.value) - 9)}" text-anchor="middle" '
                f'class="point-label">v{p.version}</text>'
            )
    legend = [
        (GOLDEN, "circle", "golden set (95% CI)"),
        (RECENT, "circle", "recent feedback"),
        (GOOD, "line", "promotion"),
        (BAD, "line", "rollback"),
    ]
    lx = left
    for colour, shape, text in legend:
        if shape == "circle":
            body.append(f'<circle cx="{lx + 5}" cy="{height - 18}" r="4.5" fill="{colour}"/>')
        else:
            body.append(
                f'<line x1="{lx}" x2="{lx + 10}" y1="{height - 18}" y2="{height - 18}" stroke="{colour}" '
                'stroke-width="2" stroke-dasharray="4 2"/>'
            )
        body.append(f'<text x="{lx + 16}" y="{height - 14}" class="legend">{escape(text)}</text>')
        lx += 28 + 7 * len(text)
    body.append(
        f'<text x="{right}" y="{height - 14}" text-anchor="end" class="legend muted">'
        "hollow: rejected or failed; shaded: champion periods</text>"
    )
    return _svg(width, height, "learning-curve", title, body)


def rollout_chart(
    arms: Sequence[tuple[str, int, float | None, float | None, float | None]],
    estimate: float | None,
    low: float | None,
    high: float | None,
    margin: float,
) -> Markup:
    """Per-arm accuracy with 95% Wilson intervals (``arms``: name, n, rate, low, high), and the
    always-valid interval of the difference (challenger - baseline) against 0 and -margin."""
    width, height = 860, 190
    title = "Live rollout: accuracy per arm and the always-valid interval of the difference"
    body: list[str] = []
    # Left: the arms.
    left, right = 150, 470
    values = [v for _, _, *ivs in arms for v in ivs if v is not None]
    x = _Scale(*_accuracy_range(values), left, right)
    body.append(f'<text x="{left}" y="18" class="chart-title">accuracy per arm (95% Wilson)</text>')
    step = 0.05 if x.hi - x.lo <= 0.3 else 0.1
    v = math.ceil(x.lo / step - 1e-9) * step
    while v <= x.hi + 1e-9:
        body.append(f'<line x1="{_f(x(v))}" x2="{_f(x(v))}" y1="30" y2="140" stroke="{GRID}"/>')
        body.append(f'<text x="{_f(x(v))}" y="156" text-anchor="middle" class="tick">{100 * v:.0f}%</text>')
        v += step
    for i, (name, n, rate, lo, hi) in enumerate(arms):
        cy = 58 + 50 * i
        colour = GOLDEN if i == 0 else RECENT
        body.append(f'<text x="{left - 10}" y="{cy + 4}" text-anchor="end" class="arm">{escape(name)}</text>')
        if rate is None:
            body.append(f'<text x="{left}" y="{cy + 4}" class="empty">no judged feedback yet</text>')
            continue
        tip = f"{name}: {_pct(rate)} of {n} judged answers, 95% CI {_pct(lo)} to {_pct(hi)}"
        body.append(f'<g class="arm-point"><title>{escape(tip)}</title>')
        if lo is not None and hi is not None:
            body.append(
                f'<line x1="{_f(x(lo))}" x2="{_f(x(hi))}" y1="{cy}" y2="{cy}" stroke="{colour}" stroke-width="3"/>'
            )
        body.append(f'<circle cx="{_f(x(rate))}" cy="{cy}" r="6" fill="{colour}"/></g>')
        body.append(f'<text x="{_f(x(rate))}" y="{cy - 12}" text-anchor="middle" class="point-label">n={n}</text>')
    # Right: the difference.
    left, right = 520, 840
    body.append(f'<text x="{left}" y="18" class="chart-title">challenger - baseline (always-valid CI)</text>')
    reach = max([abs(v) for v in (low, high, estimate) if v is not None] + [1.5 * margin, 0.05])
    reach = min(1.0, math.ceil(reach * 20) / 20)
    d = _Scale(-reach, reach, left, right)
    for v in (-reach, -reach / 2, 0.0, reach / 2, reach):
        body.append(f'<text x="{_f(d(v))}" y="156" text-anchor="middle" class="tick">{100 * v:+.0f}</text>')
    body.append(f'<line x1="{_f(d(0))}" x2="{_f(d(0))}" y1="30" y2="140" stroke="#111827"/>')
    if margin > 0:
        body.append(
            f'<line x1="{_f(d(-margin))}" x2="{_f(d(-margin))}" y1="30" y2="140" stroke="{MUTED}" '
            'stroke-dasharray="5 3"/>'
        )
        body.append(
            f'<text x="{_f(d(-margin) - 4)}" y="40" text-anchor="end" class="tick">'
            f"-margin {100 * margin:.0f} pts</text>"
        )
    if estimate is None or low is None or high is None:
        body.append(f'<text x="{left}" y="88" class="empty">no look at the evidence yet</text>')
    else:
        colour = BAD if high < 0 else GOOD if low > 0 else MUTED
        lo_c, hi_c = max(low, -reach), min(high, reach)
        tip = f"difference {100 * estimate:+.1f} pts, always-valid CI {100 * low:+.1f} to {100 * high:+.1f} pts"
        body.append(
            f'<g class="difference"><title>{escape(tip)}</title>'
            f'<line x1="{_f(d(lo_c))}" x2="{_f(d(hi_c))}" y1="83" y2="83" stroke="{colour}" stroke-width="4"/>'
            f'<circle cx="{_f(d(estimate))}" cy="83" r="6" fill="{colour}"/></g>'
        )
        body.append(
            f'<text x="{_f(d(estimate))}" y="70" text-anchor="middle" class="point-label">'
            f"{100 * estimate:+.1f} pts</text>"
        )
    body.append(f'<text x="{(left + right) / 2}" y="176" text-anchor="middle" class="legend">points of accuracy</text>')
    return _svg(width, height, "rollout-chart", title, body)


def series_chart(
    points: Sequence[SeriesPoint], *, title: str, threshold: float | None = None, percent: bool = True
) -> Markup:
    """Several series over time, each point with its interval when it has one; ``threshold``
    as a dashed horizontal line. With ``percent``, values in [0, 1] drawn as percentages."""
    width, height, left, right, top, bottom = 860, 220, 52, 840, 16, 180
    if not points:
        return _svg(width, 60, "series-chart", title, ['<text x="20" y="34" class="empty">no data yet</text>'])
    t0, t1 = min(p.at for p in points), max(p.at for p in points)
    if (t1 - t0).total_seconds() < 1:
        t0, t1 = t0 - timedelta(hours=12), t1 + timedelta(hours=12)
    x = _Scale(t0.timestamp(), t1.timestamp(), left + 10, right - 10)
    values = [v for p in points for v in (p.value, p.low, p.high) if v is not None]
    if threshold is not None:
        values.append(threshold)
    if percent:
        y = _Scale(*_accuracy_range(values), bottom, top)
    else:
        y = _Scale(min([0.0, *values]), max([*values, 1e-9]) * 1.1, bottom, top)
    body = _y_grid(y, left, right, percent=percent)
    for at, text in _time_ticks(t0, t1):
        # centred on its time, but kept inside the drawing: the last time sits 10 px from the
        # plot's edge, and a label of a date and a time is wider than twice the margin left
        cx = min(x(at.timestamp()), width - 2 - TICK_CHAR_PX * len(text) / 2)
        body.append(f'<text x="{_f(cx)}" y="{bottom + 16}" text-anchor="middle" class="tick">{escape(text)}</text>')
    if threshold is not None:
        body.append(
            f'<line x1="{left}" x2="{right}" y1="{_f(y(threshold))}" y2="{_f(y(threshold))}" stroke="{BAD}" '
            'stroke-dasharray="5 3"/>'
        )
    palette = (GOLDEN, RECENT, GOOD, "#7c3aed", BAD, MUTED)
    names = list(dict.fromkeys(p.series for p in points))
    for i, name in enumerate(names):
        colour = palette[i % len(palette)]
        series = sorted((p for p in points if p.series == name), key=lambda p: p.at)
        d = " ".join(
            f"{'M' if j == 0 else 'L'}{_f(x(p.at.timestamp()))},{_f(y(p.value))}" for j, p in enumerate(series)
        )
        body.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for p in series:
            px = x(p.at.timestamp())
            shown = _pct if percent else (lambda v: "-" if v is None else f"{v:.3g}")
            tip = f"{name}: {shown(p.value)}" + (f" ({shown(p.low)} to {shown(p.high)})" if p.low is not None else "")
            body.append(f"<g><title>{escape(tip)}</title>{_whisker(px, y, Interval(p.value, p.low, p.high), colour)}")
            body.append(f'<circle cx="{_f(px)}" cy="{_f(y(p.value))}" r="3.5" fill="{colour}"/></g>')
        body.append(f'<circle cx="{left + 5 + 120 * i}" cy="{height - 12}" r="4" fill="{colour}"/>')
        body.append(f'<text x="{left + 14 + 120 * i}" y="{height - 8}" class="legend">{escape(name)}</text>')
    return _svg(width, height, "series-chart", title, body)


def progress_bar(fraction: float, status: str) -> Markup:
    """A small bar for a job's progress; colour by status."""
    fraction = min(max(fraction, 0.0), 1.0)
    colour = {"failed": BAD, "succeeded": GOOD, "cancelled": MUTED, "paused": MUTED}.get(status, GOLDEN)
    return Markup(
        f'<svg class="progress" viewBox="0 0 160 12" width="160" height="12" role="img" '
        f'aria-label="{100 * fraction:.0f}%" xmlns="http://www.w3.org/2000/svg">'
        f'<rect width="160" height="12" rx="6" fill="{GRID}"/>'
        f'<rect width="{_f(160 * fraction)}" height="12" rx="6" fill="{colour}"/></svg>'
    )
