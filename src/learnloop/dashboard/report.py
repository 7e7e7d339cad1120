"""Reports a person can mail: one HTML file each, self-contained (styles and SVG plots
inline, no script, nothing fetched), drawn by the dashboard's templates and charts. The CLI
writes them (``learnloop report``, ``learnloop compare --out``)."""

from __future__ import annotations

from typing import Any

from learnloop import __version__
from learnloop.dashboard import comparison
from learnloop.dashboard.panels import Panel
from learnloop.dashboard.routes import environment
from learnloop.services import Services


def _render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(learnloop_version=__version__, **context)


def version_report(services: Services, model: str, version: int) -> tuple[str, dict[str, str]]:
    """The version's report page and its plots as separate SVG files (name -> SVG text)."""
    report = services.reports.report(model, version)
    drawn = comparison.plots(report)
    html = _render(
        "report.html",
        title=f"{model} v{version}",
        report=report,
        v=report.version,
        plots=Panel(True, data={"report": report, **drawn}),
        generated=services.clock.now(),
    )
    return html, {f"{name}.svg": str(svg) for name, svg in drawn.items()}


def comparison_report(services: Services, model: str, a: int, b: int) -> str:
    found = services.reports.compare(model, a, b)
    return _render(
        "compare_report.html",
        title=f"{model}: v{a} against v{b}",
        generated=services.clock.now(),
        **comparison.comparison_view(found),
    )
