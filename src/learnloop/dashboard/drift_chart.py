"""The distribution a drift detector compared, reference against now, as inline SVG: one row
per bin (or label), the reference's share and the window's as two bars. Read from the
detector's stored detail, so every check can be drawn again later."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from markupsafe import Markup

from learnloop.dashboard.charts import GOLDEN, GRID, RECENT, _f, _pct, _Scale, _svg
from learnloop.drift.examples import bin_label

UNITS = {"text_length": "text length, characters", "confidence": "top-class probability"}


@dataclass(frozen=True)
class Distribution:
    detector: str
    what: str
    categories: list[str]
    reference: list[float]
    window: list[float]


def distribution(result: Mapping[str, Any]) -> Distribution | None:
    """Reference and window shares of a detector's result, when its detail holds them."""
    detector, detail = str(result.get("detector", "?")), result.get("detail") or {}
    ref, win = detail.get("reference_share"), detail.get("window_share")
    if detector == "oov" and detail.get("window_rate") is not None:
        what = "share of a text's words the model never learned"
        return Distribution(
            detector, what, ["mean per text"], [float(detail["reference_rate"])], [float(detail["window_rate"])]
        )
    if not ref or not win or len(ref) != len(win):
        return None
    if "labels" in detail:
        categories, what = [str(label) for label in detail["labels"]], "answers per label"
    elif "edges" in detail:
        edges = list(detail["edges"])
        categories, what = [bin_label(edges, b) for b in range(len(ref))], UNITS.get(detector, detector)
    else:
        return None
    return Distribution(detector, what, categories, [float(v) for v in ref], [float(v) for v in win])


def distribution_chart(shown: Distribution) -> Markup:
    left, right, row = 110, 500, 26
    top = 24
    height = top + row * len(shown.categories) + 24
    title = f"Drift of {shown.detector}: {shown.what}, reference against the window"
    x = _Scale(0, max([*shown.reference, *shown.window, 1e-9]) * 1.1, left, right)
    body = [
        f'<text x="{left}" y="14" class="chart-title">{escape(shown.detector)}: {escape(shown.what)}</text>',
        f'<rect x="{left}" y="{height - 14}" width="10" height="10" fill="{GOLDEN}"/>',
        f'<text x="{left + 14}" y="{height - 5}" class="legend">reference (the version\'s golden set)</text>',
        f'<rect x="{left + 220}" y="{height - 14}" width="10" height="10" fill="{RECENT}"/>',
        f'<text x="{left + 234}" y="{height - 5}" class="legend">now (the check\'s window)</text>',
    ]
    for i, (name, ref, win) in enumerate(zip(shown.categories, shown.reference, shown.window, strict=True)):
        y0 = top + row * i
        body.append(f'<line x1="{left}" x2="{right}" y1="{y0 + row - 1}" y2="{y0 + row - 1}" stroke="{GRID}"/>')
        body.append(f'<text x="{left - 8}" y="{y0 + 16}" text-anchor="end" class="tick">{escape(name[:18])}</text>')
        for j, (share, colour) in enumerate(((ref, GOLDEN), (win, RECENT))):
            tip = f"{name}: {'reference' if j == 0 else 'now'} {_pct(share)}"
            body.append(
                f'<g class="bar {"reference" if j == 0 else "window"}"><title>{escape(tip)}</title>'
                f'<rect x="{left}" y="{y0 + 3 + 10 * j}" width="{_f(max(x(share) - left, 0.5))}" height="9" '
                f'fill="{colour}"/></g>'
            )
        body.append(f'<text x="{_f(x(max(ref, win)) + 6)}" y="{y0 + 16}" class="tick">{_pct(ref)} / {_pct(win)}</text>')
    return _svg(600, height, "drift-distribution", title, body)
