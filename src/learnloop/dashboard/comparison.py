"""A version's plots and two versions side by side (``services.reports``), ready to show: the
version page's plots panel, the comparison page, and the report the CLI writes."""

from __future__ import annotations

import logging
from typing import Any

from markupsafe import Markup

from learnloop.dashboard.panels import Panel
from learnloop.dashboard.version_charts import confusion_matrix_chart, reliability_chart, roc_chart
from learnloop.errors import LearnloopError
from learnloop.reports import VersionComparison, VersionReport
from learnloop.services import Services

log = logging.getLogger(__name__)


def plots(report: VersionReport) -> dict[str, Markup]:
    """One version's three plots on its golden set."""
    name = f"v{report.version.version}"
    matrix = report.metrics.get("confusion_matrix") or {"labels": list(report.model.labels), "matrix": []}
    return {
        "confusion": confusion_matrix_chart(matrix["labels"], matrix["matrix"]),
        "roc": roc_chart([(name, c) for c in report.roc]),
        "reliability": reliability_chart([(name, report.reliability)]),
    }


def version_plots(services: Services, model: str, number: int) -> Panel:
    """The version page's plots; a version that cannot be scored says why (never fails the page)."""
    try:
        report = services.reports.report(model, number)
    except LearnloopError as exc:
        return Panel(False, exc.message)
    except Exception as exc:
        log.exception("model %s version %d: plots for the dashboard failed", model, number)
        return Panel(False, f"the version could not be scored: {type(exc).__name__}")
    return Panel(True, data={"report": report, **plots(report)})


def comparison_view(comparison: VersionComparison) -> dict[str, Any]:
    """The comparison page's (and the CLI report's) values: both versions' plots overlaid."""
    first, second = comparison.reports
    names = (f"v{comparison.a.version}", f"v{comparison.b.version}")
    rocs = [(names[i], c) for i, r in enumerate(comparison.reports) for c in r.roc]
    return {
        "comparison": comparison,
        "names": names,
        "roc": roc_chart(rocs),
        "reliability": reliability_chart([(names[0], first.reliability), (names[1], second.reliability)]),
        "confusion": [plots(first)["confusion"], plots(second)["confusion"]],
        "metric_rows": metric_rows(comparison),
    }


METRICS = (
    ("accuracy", "accuracy", 1),
    ("macro_f1", "macro-F1", 1),
    ("roc_auc", "ROC AUC", 1),
    ("log_loss", "log loss", -1),
    ("brier", "Brier", -1),
    ("ece", "ECE (15 bins)", -1),
)


def metric_rows(comparison: VersionComparison) -> list[dict[str, Any]]:
    """One row per metric: both values, b - a with its interval, and which side the interval
    shows better (``better``: "b", "a" or "" when the interval holds 0)."""
    rows = []
    acc = comparison.accuracy
    for key, name, direction in METRICS:
        if key == "accuracy":
            if acc is None:
                continue
            found: dict[str, Any] = {
                "a": acc.champion_accuracy,
                "b": acc.candidate_accuracy,
                "difference": acc.difference,
                "ci": [acc.ci_low, acc.ci_high],
                "test": f"McNemar p(b better)={acc.p_better:.4f}, p(b worse)={acc.p_worse:.4f}; "
                f"discordant {acc.champion_only} / {acc.candidate_only}",
            }
        else:
            found = dict(comparison.metrics.get(key) or {})
            if not found:
                continue
            found["test"] = "paired bootstrap, 1,000 resamples"
        ci = found.get("ci")
        better = ""
        if ci is not None and None not in ci and (ci[0] > 0 or ci[1] < 0):
            better = "b" if (ci[0] > 0) == (direction > 0) else "a"
        rows.append({"key": key, "name": name, "percent": key == "accuracy", "better": better, **found})
    return rows
