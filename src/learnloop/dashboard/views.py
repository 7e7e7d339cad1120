"""What each dashboard page shows, gathered from the services (never from SQL): plain values
for the templates and the charts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from markupsafe import Markup

from learnloop.dashboard import charts, comparison, explaining, fairness_panel, panels
from learnloop.dashboard.feedback import recent_feedback
from learnloop.dashboard.generation import generation_panels
from learnloop.dashboard.value_chart import retrain_value
from learnloop.domain import SERVER_TRAIL, Event, ModelVersion, Rollout
from learnloop.evaluation.headline import verdict_headline
from learnloop.evaluation.metrics import wilson_interval
from learnloop.registry.service import ModelOverview
from learnloop.services import Services
from learnloop.tasks import get_task
from learnloop.tasks.generation.training_data import TASK_KEY as GENERATION

CURVE_EVENTS = 500
FEEDBACK_ROWS = 50
FEEDBACK_SHOWN = 20
JOB_ROWS = 10
EVENT_ROWS = 15
CURVE_KINDS = ["promoted", "rolled_back"]


def _interval(metrics: dict[str, Any] | None) -> charts.Interval | None:
    if not metrics or metrics.get("accuracy") is None:
        return None
    ci = metrics.get("accuracy_ci95") or (None, None)
    return charts.Interval(metrics["accuracy"], ci[0], ci[1])


def verdict_words(verdict: dict[str, Any]) -> str:
    """A stored verdict's headline (``evaluation.headline``: the deciding checks) without its
    leading ``passed:`` / ``rejected:``, which the page shows beside it as a badge."""
    head = verdict_headline(verdict)
    for outcome in ("passed", "rejected"):
        if head == outcome:
            return ""
        head = head.removeprefix(f"{outcome}: ")
    return head


def audit_events(services: Services) -> list[Event]:
    """The newest events of the server's own trail: admin actions, keys, failed authentications."""
    return services.registry.events(SERVER_TRAIL, EVENT_ROWS)


def champion_periods(events: Sequence[Event], now: datetime) -> tuple[list[charts.ChampionPeriod], list[charts.Marker]]:
    """Who was champion when, and the promotions and rollbacks, from the audit trail
    (``events`` of kinds ``promoted`` and ``rolled_back``, any order)."""
    periods: list[charts.ChampionPeriod] = []
    markers: list[charts.Marker] = []
    current: tuple[int, datetime] | None = None
    for e in sorted(events, key=lambda e: e.id):
        if e.created_at is None:
            continue
        if e.kind == "promoted" and e.version is not None:
            new: int | None = e.version
            markers.append(
                charts.Marker(e.created_at, "promoted", f"v{e.version} promoted by {e.actor}: {e.reason or ''}")
            )
        elif e.kind == "rolled_back":
            rollout = e.data.get("rollout")
            new = None if rollout is not None else e.data.get("to")
            what = f"rollout {rollout} (v{e.data.get('from')})" if rollout is not None else f"v{e.data.get('from')}"
            markers.append(
                charts.Marker(e.created_at, "rolled_back", f"{what} rolled back by {e.actor}: {e.reason or ''}")
            )
        else:
            continue
        if new is None:
            continue
        if current is not None:
            periods.append(charts.ChampionPeriod(current[0], current[1], e.created_at))
        current = (int(new), e.created_at)
    if current is not None:
        periods.append(charts.ChampionPeriod(current[0], current[1], now))
    return periods, markers


def gate_rejections(versions: Sequence[ModelVersion]) -> list[charts.Marker]:
    """A marker at each version the offline gate judged and failed."""
    return [
        charts.Marker(v.created_at, "rejected", f"v{v.version} rejected by the gate: {verdict_words(v.verdict)}")
        for v in versions
        if v.verdict and not v.verdict.get("passed")
    ]


def learning_curve(
    versions: Sequence[ModelVersion],
    periods: Sequence[charts.ChampionPeriod],
    markers: Sequence[charts.Marker],
) -> Markup:
    points = [
        charts.VersionPoint(
            v.version,
            v.created_at,
            v.status.value,
            _interval(v.metrics.get("golden")),
            _interval(v.metrics.get("recent")),
        )
        for v in versions
    ]
    return charts.learning_curve(points, periods, markers)


def rollout_view(rollout: Rollout) -> dict[str, Any]:
    """A rollout with its latest look, ready to show: the test, guardrails, decision and chart."""
    stats = rollout.stats or {}
    test = stats.get("test") or {}
    arms = []
    for name, version, n, rate in (
        ("A", rollout.baseline_version, test.get("n_a", 0), test.get("rate_a")),
        ("B", rollout.version, test.get("n_b", 0), test.get("rate_b")),
    ):
        low, high = wilson_interval(round(rate * n), n) if rate is not None and n else (None, None)
        arms.append((f"{name}: v{version}", int(n or 0), rate, low, high))
    margin = rollout.settings.rollout.canary_margin
    return {
        "rollout": rollout,
        "test": test,
        "guardrails": stats.get("guardrails") or [],
        "decision": stats.get("decision"),
        "reason": stats.get("reason"),
        "looked_at": datetime.fromisoformat(stats["looked_at"]) if stats.get("looked_at") else None,
        "unknown": stats.get("unknown_feedback"),
        "margin": margin,
        "require": rollout.settings.rollout.canary_require,
        "min_feedback": rollout.settings.rollout.canary_min_feedback,
        "chart": charts.rollout_chart(arms, test.get("estimate"), test.get("ci_low"), test.get("ci_high"), margin),
    }


def models_overview(services: Services) -> list[dict[str, Any]]:
    out = []
    for model in services.registry.list_models():
        o = services.registry.overview(model.name)
        out.append(
            {
                "model": o.model,
                "champion": o.deployment.champion_version,
                "previous": o.deployment.previous_version,
                "rollout": o.rollout,
                "versions": len(o.versions),
                "feedback": sum(o.feedback_counts.values()),
                "feedback_counts": o.feedback_counts,
                "last_retrain": o.last_retrain,
            }
        )
    return out


def _model_parts(services: Services, o: ModelOverview) -> dict[str, Any]:
    """What every model's page shows: champion, rollout, versions, feedback counts, jobs, events, drift."""
    model = o.model.name
    versions = sorted(o.versions, key=lambda v: v.version, reverse=True)
    by_number = {v.version: v for v in versions}
    jobs = services.jobs.list(model, JOB_ROWS)
    return {
        "model": o.model,
        "deployment": o.deployment,
        "champion": by_number.get(o.deployment.champion_version or -1),
        "previous": by_number.get(o.deployment.previous_version or -1),
        "rollout": rollout_view(o.rollout) if o.rollout else None,
        "versions": versions,
        "feedback_counts": o.feedback_counts,
        "last_retrain": o.last_retrain,
        "events": services.registry.events(model, EVENT_ROWS),
        "jobs": [(j, charts.progress_bar(j.progress, j.status.value)) for j in jobs],
        "drift": panels.drift(services, model),
        "value": retrain_value(services, model),
    }


def model_page(services: Services, model: str, *, disagreements_only: bool = False) -> dict[str, Any]:
    o = services.registry.overview(model)
    if o.model.task == GENERATION:
        return generative_model_page(services, o)
    parts = _model_parts(services, o)
    rule = get_task(o.model.task).outcomes(o.model)
    feedback = recent_feedback(services.feedback, model, o.model.labels, FEEDBACK_ROWS, rule)
    now = services.clock.now()
    periods, markers = champion_periods(services.registry.events(model, CURVE_EVENTS, kinds=CURVE_KINDS), now)
    golden = {
        v.version: v.metrics["golden"]["accuracy"] for v in parts["versions"] if _interval(v.metrics.get("golden"))
    }
    return {
        **parts,
        "generative": False,
        "curve": learning_curve(parts["versions"], periods, markers),
        "feedback": ([f for f in feedback if f.disagrees] if disagreements_only else feedback)[:FEEDBACK_SHOWN],
        "disagreements": sum(f.disagrees for f in feedback),
        "feedback_shown": len(feedback),
        "disagreements_only": disagreements_only,
        "online": panels.online_accuracy(services, model, golden, [*markers, *gate_rejections(parts["versions"])]),
        "fairness": fairness_panel.fairness(services, model),
    }


def generative_model_page(services: Services, o: ModelOverview) -> dict[str, Any]:
    """A generative model's page: the classifier's panels (labels, accuracy, disagreements)
    make no sense for it; its answers, ratings, preferences and curation counts do."""
    events = services.registry.events(o.model.name, CURVE_EVENTS, kinds=CURVE_KINDS)
    _, markers = champion_periods(events, services.clock.now())
    return {
        **_model_parts(services, o),
        "generative": True,
        **generation_panels(services, o.model.name, markers),
        "online": panels.online_accuracy(services, o.model.name, {}, markers),  # the champion's mean rating, its alarm
    }


def rollout_panel(services: Services, model: str) -> dict[str, Any]:
    """Just the live rollout (the panel the page refreshes every few seconds)."""
    o = services.registry.overview(model)
    return {"model": o.model, "deployment": o.deployment, "rollout": rollout_view(o.rollout) if o.rollout else None}


def version_page(services: Services, model: str, number: int) -> dict[str, Any]:
    version = services.registry.version(model, number)
    snapshot = services.registry.snapshot(version.snapshot_hash) if version.snapshot_hash else None
    verdict = version.verdict or {}
    return {
        "model": services.registry.get_model(model),
        "deployment": services.registry.deployment(model),
        "version": version,
        "sets": [
            (name, version.metrics[name])
            for name in ("golden", "recent")
            if isinstance(version.metrics.get(name), dict) and version.metrics[name].get("n")
        ],
        "latency": version.metrics.get("latency") or {},
        "training": version.metrics.get("training") or {},  # a generative version's adapter fit
        "held_out": version.metrics.get("held_out") or {},
        "counts": version.metrics.get("snapshot_counts") or {},
        "selection": version.metrics.get("selection"),  # the candidates its retrain tried
        "snapshot": snapshot,
        "verdict": verdict,
        "comparisons": verdict.get("comparisons") or [],
        "secondary": verdict.get("secondary") or {},
        "plots": comparison.version_plots(services, model, number)
        if services.registry.get_model(model).task != GENERATION
        else None,
        "versions": [v.version for v in services.registry.versions(model)],
        "weights_panel": explaining.weights_panel(services, model, number, version.parent_version),
    }


def compare_page(services: Services, model: str, a: int, b: int) -> dict[str, Any]:
    return {
        **comparison.comparison_view(services.reports.compare(model, a, b)),
        "versions": [v.version for v in services.registry.versions(model)],
    }
