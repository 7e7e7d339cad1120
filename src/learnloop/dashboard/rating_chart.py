"""A generative model's ratings as inline SVG (the style of ``charts``): the distribution of
ratings 1-5 as bars, and the mean rating of each version per time bucket with its interval
as whiskers, promotions and rollbacks as vertical lines. Pure functions of plain data; every
text is escaped here."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from html import escape

from markupsafe import Markup

from learnloop.dashboard.charts import BAD, GOLDEN, GOOD, GRID, MUTED, RECENT, Marker, _f, _Scale, _svg
from learnloop.tasks.generation.ratings import RatingPoint

PALETTE = (GOLDEN, RECENT, GOOD, "#7c3aed", BAD, MUTED)
MAX_TICKS = 8
BAR_COLOURS = {1: BAD, 2: "#f97316", 3: MUTED, 4: "#65a30d", 5: GOOD}


def rating_distribution(counts: Mapping[int, int]) -> Markup:
    """One horizontal bar per rating, with its count and share."""
    width, height, left, right = 420, 150, 60, 360
    title = "Rating distribution"
    total = sum(counts.values())
    body: list[str] = []
    top = max(counts.values(), default=0) or 1
    for i, rating in enumerate(sorted(counts, reverse=True)):
        n = counts[rating]
        y = 12 + 26 * i
        share = f"{100 * n / total:.0f}%" if total else "-"
        body.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end" class="arm">{rating} ★</text>')
        body.append(f'<rect x="{left}" y="{y}" width="{right - left}" height="18" rx="3" fill="{GRID}"/>')
        body.append(
            f'<g class="bar rating-{rating}"><title>rating {rating}: {n} of {total}</title>'
            f'<rect x="{left}" y="{y}" width="{_f((right - left) * n / top)}" height="18" rx="3" '
            f'fill="{BAR_COLOURS.get(rating, MUTED)}"/></g>'
        )
        body.append(f'<text x="{right + 8}" y="{y + 13}" class="legend">{n} ({share})</text>')
    return _svg(width, height, "rating-distribution", title, body)


def bucket_text(bucket: timedelta) -> str:
    for size, name in ((timedelta(days=30), "30 days"), (timedelta(weeks=1), "week"), (timedelta(days=1), "day")):
        if bucket >= size:
            return name
    return "hour" if bucket >= timedelta(hours=1) else "minute"


def _bucket_ticks(t0: datetime, t1: datetime, bucket: timedelta) -> list[tuple[datetime, str]]:
    """A tick at every bucket's start from ``t0`` (one), at most ``MAX_TICKS`` of them."""
    fmt = "%H:%M" if bucket < timedelta(hours=1) else "%d %b %H:00" if bucket < timedelta(days=1) else "%d %b"
    step = bucket * max(1, math.ceil((t1 - t0) / bucket / MAX_TICKS))
    ticks, at = [], t0
    while at <= t1:
        ticks.append((at, at.strftime(fmt)))
        at += step
    return ticks


def rating_series(points: Sequence[RatingPoint], markers: Sequence[Marker], bucket: timedelta) -> Markup:
    """The mean rating of each version per time bucket (95% Student-t intervals as whiskers),
    one line per version, promotions and rollbacks as dashed vertical lines."""
    width, height, left, right, top, bottom = 860, 250, 52, 840, 16, 200
    title = f"Mean rating per version and {bucket_text(bucket)} (95% Student-t interval)"
    if not points:
        return _svg(width, 60, "rating-chart", title, ['<text x="20" y="34" class="empty">no ratings yet</text>'])
    times = [p.start for p in points] + [m.at for m in markers if m.at >= min(p.start for p in points)]
    t0, t1 = min(times), max(p.start + bucket for p in points)
    t1 = max(t1, *times)
    x = _Scale(t0.timestamp(), t1.timestamp(), left + 10, right - 10)
    y = _Scale(1.0, 5.0, bottom, top)
    body: list[str] = []
    for v in (1, 2, 3, 4, 5):
        body.append(f'<line x1="{left}" x2="{right}" y1="{_f(y(v))}" y2="{_f(y(v))}" stroke="{GRID}"/>')
        body.append(f'<text x="{left - 6}" y="{_f(y(v) + 4)}" text-anchor="end" class="tick">{v}</text>')
    for at, text in _bucket_ticks(t0, t1, bucket):
        body.append(
            f'<text x="{_f(x(at.timestamp()))}" y="{bottom + 16}" text-anchor="middle" class="tick">'
            f"{escape(text)}</text>"
        )
    for m in markers:
        if not t0 <= m.at <= t1:
            continue
        mx = x(m.at.timestamp())
        colour = GOOD if m.kind == "promoted" else BAD
        body.append(
            f'<g class="marker {escape(m.kind)}"><title>{escape(m.text)}</title>'
            f'<line x1="{_f(mx)}" x2="{_f(mx)}" y1="{top}" y2="{bottom}" stroke="{colour}" stroke-dasharray="4 3"/></g>'
        )
    versions = sorted({p.version for p in points})
    half = bucket / 2
    for i, version in enumerate(versions):
        colour = PALETTE[i % len(PALETTE)]
        series = [p for p in points if p.version == version]
        centre = [(x((p.start + half).timestamp()) + 4 * (i - (len(versions) - 1) / 2), p) for p in series]
        if len(series) > 1:
            d = " ".join(f"{'M' if j == 0 else 'L'}{_f(px)},{_f(y(p.mean))}" for j, (px, p) in enumerate(centre))
            body.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for px, p in centre:
            tip = f"v{p.version}, {p.start:%Y-%m-%d %H:%M}: mean {p.mean:.2f} of {p.n} ratings" + (
                f", 95% CI {p.low:.2f} to {p.high:.2f}" if p.low is not None and p.high is not None else ""
            )
            body.append(f'<g class="point"><title>{escape(tip)}</title>')
            if p.low is not None and p.high is not None:
                body.append(
                    f'<line x1="{_f(px)}" x2="{_f(px)}" y1="{_f(y(p.low))}" y2="{_f(y(p.high))}" stroke="{colour}"/>'
                )
                for end in (p.low, p.high):  # caps: an interval, not a marker line
                    body.append(
                        f'<line x1="{_f(px - 4)}" x2="{_f(px + 4)}" y1="{_f(y(end))}" y2="{_f(y(end))}" '
                        f'stroke="{colour}"/>'
                    )
            body.append(f'<circle cx="{_f(px)}" cy="{_f(y(p.mean))}" r="4" fill="{colour}"/></g>')
            body.append(f'<text x="{_f(px + 7)}" y="{_f(y(p.mean) + 4)}" class="point-label">n={p.n}</text>')
        body.append(f'<circle cx="{left + 5 + 90 * i}" cy="{height - 12}" r="4" fill="{colour}"/>')
        body.append(f'<text x="{left + 14 + 90 * i}" y="{height - 8}" class="legend">v{version}</text>')
    lx = left + 90 * len(versions)
    for colour, text in ((GOOD, "promotion"), (BAD, "rollback")):
        body.append(
            f'<line x1="{lx}" x2="{lx + 10}" y1="{height - 12}" y2="{height - 12}" stroke="{colour}" '
            'stroke-width="2" stroke-dasharray="4 2"/>'
        )
        body.append(f'<text x="{lx + 16}" y="{height - 8}" class="legend">{text}</text>')
        lx += 100
    return _svg(width, height, "rating-chart", title, body)
