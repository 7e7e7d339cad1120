"""A version's plots as inline SVG: the confusion matrix, ROC curves and the reliability
diagram; the last two take several versions at once (the comparison page overlays them).
Pure functions of plain data; every text is escaped here (see ``charts``)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from learnloop.dashboard.charts import GOLDEN, GRID, MUTED, RECENT, _f, _pct, _Scale, _svg, path_d
from learnloop.evaluation.curves import ReliabilityBin, RocCurve

SERIES = (GOLDEN, RECENT, "#7c3aed", "#16a34a", "#dc2626", MUTED)
SIZE, PAD_LEFT, PAD_TOP, PAD_BOTTOM = 300, 48, 14, 44
WIDTH = PAD_LEFT + SIZE + 14  # every plot of a version is this wide: side by side, they share a scale


def _square_axes(x: _Scale, y: _Scale, x_title: str, y_title: str) -> list[str]:
    """A unit square's grid, ticks at 0, 0.25, ... 1 and axis titles."""
    body = []
    for i in range(5):
        v = i / 4
        body.append(f'<line x1="{_f(x(v))}" x2="{_f(x(v))}" y1="{_f(y(0))}" y2="{_f(y(1))}" stroke="{GRID}"/>')
        body.append(f'<line x1="{_f(x(0))}" x2="{_f(x(1))}" y1="{_f(y(v))}" y2="{_f(y(v))}" stroke="{GRID}"/>')
        body.append(f'<text x="{_f(x(v))}" y="{_f(y(0) + 14)}" text-anchor="middle" class="tick">{v:g}</text>')
        body.append(f'<text x="{_f(x(0) - 6)}" y="{_f(y(v) + 4)}" text-anchor="end" class="tick">{v:g}</text>')
    body.append(f'<text x="{_f((x(0) + x(1)) / 2)}" y="{_f(y(0) + 30)}" text-anchor="middle" class="legend">')
    body.append(f"{escape(x_title)}</text>")
    body.append(
        f'<text transform="translate(12 {_f((y(0) + y(1)) / 2)}) rotate(-90)" text-anchor="middle" class="legend">'
        f"{escape(y_title)}</text>"
    )
    body.append(
        f'<line class="diagonal" x1="{_f(x(0))}" y1="{_f(y(0))}" x2="{_f(x(1))}" y2="{_f(y(1))}" '
        f'stroke="{MUTED}" stroke-dasharray="4 3"/>'
    )
    return body


def _legend(names: Sequence[str], y0: float, note: str = "") -> list[str]:
    """One line per series under the plot, and an optional note without a swatch."""
    body = []
    for i, name in enumerate(names):
        colour = SERIES[i % len(SERIES)]
        body.append(f'<rect x="{PAD_LEFT}" y="{_f(y0 + 16 * i - 9)}" width="10" height="10" fill="{colour}"/>')
        body.append(f'<text x="{PAD_LEFT + 15}" y="{_f(y0 + 16 * i)}" class="legend">{escape(name)}</text>')
    if note:
        body.append(f'<text x="{PAD_LEFT}" y="{_f(y0 + 16 * len(names))}" class="legend muted">{escape(note)}</text>')
    return body


def _height(lines: int) -> int:
    return PAD_TOP + SIZE + PAD_BOTTOM + 16 * lines


def roc_chart(curves: Sequence[tuple[str, RocCurve]]) -> Markup:
    """ROC curves (``name``, curve), the chance diagonal dashed."""
    width, height = WIDTH, _height(len(curves))
    title = "ROC curve: true positive rate against false positive rate"
    if not curves:
        return _svg(width, 60, "roc-chart", title, ['<text x="20" y="34" class="empty">no ROC curve: one class</text>'])
    x = _Scale(0, 1, PAD_LEFT, PAD_LEFT + SIZE)
    y = _Scale(0, 1, PAD_TOP + SIZE, PAD_TOP)
    body = _square_axes(x, y, "false positive rate", "true positive rate")
    names = []
    for i, (name, curve) in enumerate(curves):
        colour = SERIES[i % len(SERIES)]
        d = path_d((x(a), y(b)) for a, b in zip(curve.fpr, curve.tpr, strict=True))
        tip = (
            f"{name}: positive class {curve.label}, AUC {curve.auc:.3f} "
            f"({curve.positives} positive, {curve.negatives} negative)"
        )
        body.append(f'<g class="roc-curve"><title>{escape(tip)}</title>')
        body.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"/></g>')
        names.append(f"{name} (class {curve.label}): AUC {curve.auc:.3f}")
    body += _legend(names, PAD_TOP + SIZE + PAD_BOTTOM + 4)
    return _svg(width, height, "roc-chart", title, body)


def reliability_chart(series: Sequence[tuple[str, Sequence[ReliabilityBin]]]) -> Markup:
    """Accuracy against mean top-class confidence per bin (95% Wilson whiskers, dot area by
    count); a calibrated model lies on the dashed diagonal."""
    width, height = WIDTH, _height(len(series) + 1)
    title = "Reliability diagram: accuracy against confidence per bin"
    if not any(bins for _, bins in series):
        return _svg(width, 60, "reliability-chart", title, ['<text x="20" y="34" class="empty">no examples</text>'])
    x = _Scale(0, 1, PAD_LEFT, PAD_LEFT + SIZE)
    y = _Scale(0, 1, PAD_TOP + SIZE, PAD_TOP)
    body = _square_axes(x, y, "mean confidence (top class)", "accuracy")
    biggest = max(b.n for _, bins in series for b in bins)
    names = []
    for i, (name, bins) in enumerate(series):
        colour = SERIES[i % len(SERIES)]
        d = path_d((x(b.confidence), y(b.accuracy)) for b in bins)
        body.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="1.5" stroke-opacity="0.7"/>')
        for b in bins:
            cx, r = x(b.confidence), 2.5 + 5.5 * (b.n / biggest) ** 0.5
            tip = (
                f"{name}: confidence {b.low:.2f}-{b.high:.2f}, n={b.n}, mean confidence {_pct(b.confidence)}, "
                f"accuracy {_pct(b.accuracy)} (95% CI {_pct(b.ci_low)} to {_pct(b.ci_high)})"
            )
            body.append(
                f'<g class="bin"><title>{escape(tip)}</title>'
                f'<line x1="{_f(cx)}" x2="{_f(cx)}" y1="{_f(y(b.ci_low))}" y2="{_f(y(b.ci_high))}" stroke="{colour}" '
                f'stroke-opacity="0.6"/><circle cx="{_f(cx)}" cy="{_f(y(b.accuracy))}" r="{_f(r)}" fill="{colour}" '
                'fill-opacity="0.85"/></g>'
            )
        names.append(f"{name} ({sum(b.n for b in bins)} examples)")
    body += _legend(names, PAD_TOP + SIZE + PAD_BOTTOM + 4, "dot area: examples in the bin")
    return _svg(width, height, "reliability-chart", title, body)


def confusion_matrix_chart(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> Markup:
    """Counts per (true label, predicted label), each cell shaded by its share of its row
    (the recall of the diagonal), the count and that share written in it."""
    k = len(labels)
    left, top = 30 + 7 * min(max((len(label) for label in labels), default=1), 18), 40
    cell = max(34, (WIDTH - left - 10) // max(k, 1))
    width, height = max(WIDTH, left + cell * k + 10), top + cell * k + 10
    title = "Confusion matrix: rows true label, columns predicted label"
    body = [
        f'<text x="{_f(left + cell * k / 2)}" y="14" text-anchor="middle" class="legend">predicted</text>',
        f'<text transform="translate(10 {_f(top + cell * k / 2)}) rotate(-90)" text-anchor="middle" '
        'class="legend">true</text>',
    ]
    for j, label in enumerate(labels):
        body.append(
            f'<text x="{_f(left + cell * (j + 0.5))}" y="{top - 8}" text-anchor="middle" class="tick">'
            f"{escape(label[:18])}</text>"
        )
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        ty = top + cell * i
        body.append(
            f'<text x="{left - 6}" y="{_f(ty + cell / 2 + 4)}" text-anchor="end" class="tick">'
            f"{escape(labels[i][:18])}</text>"
        )
        for j, count in enumerate(row):
            share = count / total
            colour = GOLDEN if i == j else "#dc2626"
            tip = f"true {labels[i]}, predicted {labels[j]}: {count} ({_pct(share)} of true {labels[i]})"
            body.append(
                f'<g class="cell"><title>{escape(tip)}</title>'
                f'<rect x="{left + cell * j}" y="{ty}" width="{cell - 2}" height="{cell - 2}" fill="{colour}" '
                f'fill-opacity="{_f(0.08 + 0.8 * share)}"/>'
                f'<text x="{_f(left + cell * (j + 0.5) - 1)}" y="{_f(ty + cell / 2)}" text-anchor="middle" '
                f'class="cell-count{" light" if share > 0.55 else ""}">{count}</text>'
                f'<text x="{_f(left + cell * (j + 0.5) - 1)}" y="{_f(ty + cell / 2 + 13)}" text-anchor="middle" '
                f'class="tick{" light" if share > 0.55 else ""}">{_pct(share)}</text></g>'
            )
    return _svg(width, height, "confusion-matrix", title, body)
