"""Rich tables of one version's stored metrics and gate checks (``learnloop versions --version N``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from learnloop.cli.common import pct
from learnloop.cli.tables import Table

if TYPE_CHECKING:
    from learnloop.domain import ModelVersion

# (metric key, row name, format); the interval, when there is one, is stored under KEY_ci95.
SCORES = (
    ("accuracy", "accuracy", "pct"),
    ("macro_f1", "macro-F1", "num"),
    ("roc_auc", "ROC AUC", "num"),
    ("log_loss", "log loss", "num"),
    ("ece", "ECE (15 bins)", "num"),
    ("brier", "Brier", "num"),
)
LATENCY = ("p50", "p90", "p95", "p99", "max", "mean")
# The generative gate's checks (``evaluation.generative_gate``): metric key -> (row name, format).
GATE_METRICS = {
    "preference_accuracy": ("preference accuracy", "pct"),
    "preference_shift": ("pairs moved toward the chosen", "pct"),
    "nll_per_token": ("NLL per token (nats)", "num"),
    "judge_score": ("judge score", "num"),
}


def num(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _fmt(value: Any, kind: str) -> str:
    return pct(value) if kind == "pct" else num(value)


def scores_table(name: str, metrics: Mapping[str, Any]) -> Table:
    """Point estimates and 95% intervals of one evaluation set."""
    boot = metrics.get("bootstrap") or {}
    note = f"; CIs: Wilson for accuracy, {boot['resamples']} bootstrap resamples" if boot else ""
    table = Table(title=f"{name} (n={metrics.get('n', 0)}{note})", title_justify="left")
    for column in ("metric", "value", "95% CI"):
        table.add_column(column)
    for key, label, kind in SCORES:
        if key not in metrics:
            continue
        ci = metrics.get(f"{key}_ci95")
        interval = f"{_fmt(ci[0], kind)} - {_fmt(ci[1], kind)}" if ci else "-"
        table.add_row(label, _fmt(metrics[key], kind), interval)
    return table


def per_class_table(name: str, metrics: Mapping[str, Any]) -> Table:
    table = Table(title=f"{name}: per class", title_justify="left")
    for column in ("label", "precision", "recall", "F1", "support"):
        table.add_column(column)
    for label, row in metrics.get("per_class", {}).items():
        table.add_row(label, num(row["precision"]), num(row["recall"]), num(row["f1"]), str(row["support"]))
    return table


def latency_table(latency: Mapping[str, Any]) -> Table:
    table = Table(title=f"predict_one latency, ms (n={latency.get('n', 0)})", title_justify="left")
    for column in LATENCY:
        table.add_column(column)
    table.add_row(*(num(latency.get(key)) for key in LATENCY))
    return table


def comparison_table(name: str, differences: Mapping[str, Any], champion: Any) -> Table:
    """Candidate minus champion on one evaluation set, with paired bootstrap intervals."""
    table = Table(title=f"{name}: against version {champion} (paired bootstrap)", title_justify="left")
    for column in ("metric", "champion", "this version", "difference", "95% CI"):
        table.add_column(column)
    for key, label, kind in SCORES:
        d = differences.get(key)
        if d is None:
            continue
        ci = d.get("ci")
        table.add_row(
            label,
            _fmt(d["champion"], kind),
            _fmt(d["candidate"], kind),
            f"{d['difference']:+.3f}",
            f"{ci[0]:+.3f} - {ci[1]:+.3f}" if ci else "-",
        )
    return table


def training_table(training: Mapping[str, Any]) -> Table:
    """A generative version's adapter fit: its stages, what each learnt from and how it ended."""
    skipped = training.get("skipped_by_budget") or []
    note = f"; skipped by the time budget: {', '.join(skipped)}" if skipped else ""
    table = Table(title=f"adapter fit, {training.get('seconds', 0):.1f}s{note}", title_justify="left")
    for column in ("stage", "rows", "steps", "mean loss", "last loss", "reward margin", "seconds"):
        table.add_column(column)
    for stage in training.get("stages", []):
        last = stage.get("last") or {}
        table.add_row(
            stage["stage"] + (" (budget)" if stage.get("stopped_by_budget") else ""),
            str(stage["examples"]),
            str(stage["steps"]),
            num(stage.get("train_loss")),
            num(last.get("loss")),
            num(last.get("rewards/margins")),
            f"{stage.get('seconds', 0):.1f}",
        )
    return table


def _difference(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    return f"{100 * value:+.1f} pts" if kind == "pct" else f"{value:+.3f}"


def _outcome(check: Mapping[str, Any]) -> str:
    if check.get("min_n") is not None and check.get("n", 0) < check["min_n"]:
        return f"too few (< {check['min_n']})"
    if check.get("required") is False:
        return "reported"
    return "passed" if check.get("passed") else "FAILED"


def gate_table(verdict: Mapping[str, Any]) -> Table | None:
    """A generative verdict's checks against the champion: each version's value, the
    difference with its interval, the one-sided p-value of "better" and the test."""
    checks = [c for c in verdict.get("comparisons") or [] if isinstance(c, Mapping) and c.get("metric") in GATE_METRICS]
    if not checks:
        return None
    table = Table(title=f"gate checks against version {verdict.get('champion_version', '?')}", title_justify="left")
    for column in ("check", "set", "n", "champion", "this version", "difference", "CI", "p better", "test", "outcome"):
        table.add_column(column)
    for c in checks:
        label, kind = GATE_METRICS[c["metric"]]
        if isinstance(c.get("margin"), str):  # preference accuracy: the margin judged, summed or per-token
            label = f"{label} ({c['margin']} margin)"
        confidence = f" ({c['confidence']:.0%})" if c.get("confidence") is not None else ""
        table.add_row(
            label,
            str(c.get("set_name", "-")),
            str(c.get("n", "-")),
            _fmt(c.get("champion"), kind),
            _fmt(c.get("candidate"), kind),
            _difference(c.get("difference"), kind),
            f"{_difference(c.get('ci_low'), kind)} - {_difference(c.get('ci_high'), kind)}{confidence}",
            "-" if c.get("p_better") is None else f"{c['p_better']:.4g}",
            str(c.get("test", "-")),
            _outcome(c),
        )
    return table


def selection_table(selection: Mapping[str, Any]) -> Table:
    """The candidates a retrain tried (``metrics.selection``): each one's forward-chaining fold
    scores on the training side, its pooled score, and the one chosen."""
    table = Table(
        title=f"candidates: {selection.get('folds', 0)} forward-chaining folds, "
        f"{selection.get('judged_examples', 0)} examples before the gate's evidence",
        title_justify="left",
    )
    for column in ("", "family", "fold accuracies", "accuracy", "trials (pruned)", "seconds", "params or error"):
        table.add_column(column)
    for c in selection.get("candidates", []):
        folds = " ".join(pct(score) for score in c.get("fold_scores", [])) or "-"
        trials = f"{c['trials']} ({c['pruned']})" if c.get("searched") else "-"
        detail = c["error"] if c.get("error") else ", ".join(f"{k}={v}" for k, v in sorted(c["params"].items()))
        table.add_row(
            "chosen" if c.get("chosen") else "",
            f"{c['family']} (update)" if c.get("update") else c["family"],
            folds,
            pct(c.get("score")),
            trials,
            f"{c.get('seconds', 0):.1f}",
            detail,
        )
    return table


def version_tables(v: ModelVersion) -> list[Table]:
    """Every evaluation set's scores and per-class table, then the latency, if recorded."""
    tables: list[Table] = []
    for name in ("golden", "recent"):
        metrics = v.metrics.get(name)
        if not metrics or not metrics.get("n"):
            continue
        tables += [scores_table(name, metrics), per_class_table(name, metrics)]
    verdict = v.verdict or {}
    for name, differences in (verdict.get("secondary") or {}).items():
        tables.append(comparison_table(name, differences, verdict.get("champion_version")))
    gate = gate_table(verdict)
    if gate is not None:
        tables.append(gate)
    latency = v.metrics.get("latency")
    if latency and latency.get("n"):
        tables.append(latency_table(latency))
    selection = v.metrics.get("selection")
    if selection:
        tables.append(selection_table(selection))
    training = v.metrics.get("training")
    if training:
        tables.append(training_table(training))
    return tables
