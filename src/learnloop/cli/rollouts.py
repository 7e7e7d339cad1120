"""learnloop rollout start | status | list | pause | resume | promote | rollback | stop;
learnloop sample-size."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from learnloop.cli.common import (
    ArtifactOpt,
    DbOpt,
    HomeOpt,
    ModelOpt,
    actor,
    console,
    fail,
    open_services,
    parse_assignments,
    pct,
    settings_for,
)
from learnloop.cli.tables import Table

if TYPE_CHECKING:
    from learnloop.domain import Rollout
    from learnloop.services import Services

app = typer.Typer(help="Canary, shadow and A/B rollouts decided by live feedback.", no_args_is_help=True)
IdArg = Annotated[int | None, typer.Argument(help="Rollout id (default: the model's running rollout).")]
ReasonOpt = Annotated[str | None, typer.Option("--reason")]


def _pts(x: float) -> str:
    return f"{100 * x:+.1f} pts"


def _resolve(services: Services, model: str, rollout_id: int | None) -> Rollout:
    if rollout_id is not None:
        return services.rollouts.get(model, rollout_id)
    active = services.rollouts.active(model)
    if active is None:
        fail(f"model {model!r} has no running rollout; name one by id (learnloop rollout list)")
    return active


def show_rollout(r: Rollout) -> None:
    head = (
        f"rollout [bold]{r.id}[/]: {r.strategy.value} of version [bold]{r.version}[/] beside version "
        f"{r.baseline_version}, [bold]{r.status.value}[/], "
        + (f"{r.share:.0%} of traffic" if r.strategy.value != "shadow" else f"copy of {r.share:.0%} of traffic")
    )
    if r.strategy.value == "canary":
        head += f" (steps {', '.join(f'{s:.0%}' for s in r.steps)}; on step {r.step + 1})"
    console.print(head)
    console.print(f"started {r.started_at:%Y-%m-%d %H:%M:%S} by {r.actor}" + (f": {r.reason}" if r.reason else ""))
    test: dict[str, Any] = r.stats.get("test") or {}
    if test:
        from learnloop.evaluation.metrics import wilson_interval

        table = Table(title=f"live feedback ({test['design']}; {test['test']})")
        for column in ("arm", "version", "judged", "accuracy", "95% CI"):
            table.add_column(column)
        arms = (("A", r.baseline_version, test["n_a"], test["rate_a"]), ("B", r.version, test["n_b"], test["rate_b"]))
        for arm, version, n, rate in arms:
            low, high = wilson_interval(round((rate or 0) * n), n) if n else (0.0, 1.0)
            table.add_row(arm, str(version), str(n), pct(rate), f"[{pct(low)}, {pct(high)}]" if n else "-")
        console.print(table)
        console.print(
            f"B - A: {_pts(test['estimate'])}, always-valid {1 - test['alpha']:.0%} CI "
            f"[{_pts(test['ci_low'])}, {_pts(test['ci_high'])}], always-valid p={test['p_value']:.3g}"
        )
    for g in r.stats.get("guardrails", []):
        console.print(f"guardrail {g['name']}: " + ("[red]" if g["tripped"] else "") + g["message"])
    if r.stats.get("decision"):
        console.print(
            f"last look ({r.stats.get('looked_at', '')}): [bold]{r.stats['decision']}[/]: {r.stats['reason']}"
        )
    if r.ended_at:
        console.print(f"ended {r.ended_at:%Y-%m-%d %H:%M:%S}: {r.reason or ''}")


@app.command()
def start(
    version: Annotated[int, typer.Argument(help="The challenger version.")],
    home: HomeOpt,
    model: ModelOpt,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
    strategy: Annotated[str, typer.Option("--strategy", help="canary, shadow or ab.")] = "canary",
    share: Annotated[float | None, typer.Option("--share", help="First share of traffic, 0-1.")] = None,
    baseline: Annotated[int | None, typer.Option("--baseline", help="A/B only: arm A if not the champion.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="KEY=VALUE policy override for this rollout, repeatable.")
    ] = None,
    reason: ReasonOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Roll out a version the offline gate rejected.")] = False,
) -> None:
    """Put a version on live traffic beside the champion."""
    changes = parse_assignments(set_ or [])
    with open_services(settings_for(home, database_url, artifact_url=artifact_url)) as services:
        r = services.rollouts.start(
            model,
            version,
            strategy,
            actor=actor(),
            reason=reason or "started from the CLI",
            changes=changes,
            share=share,
            baseline=baseline,
            force=force,
        )
        show_rollout(r)


@app.command()
def status(home: HomeOpt, model: ModelOpt, rollout_id: IdArg = None, database_url: DbOpt = None) -> None:
    """A rollout's arms, live test, guardrails and last decision."""
    with open_services(settings_for(home, database_url)) as services:
        show_rollout(_resolve(services, model, rollout_id))


@app.command("list")
def list_(home: HomeOpt, model: ModelOpt, database_url: DbOpt = None) -> None:
    """The model's rollouts, newest first."""
    with open_services(settings_for(home, database_url)) as services:
        table = Table(title=f"rollouts of {model}")
        for column in ("id", "strategy", "version", "baseline", "status", "share", "started", "ended", "reason"):
            table.add_column(column)
        for r in services.rollouts.list(model):
            table.add_row(
                str(r.id),
                r.strategy.value,
                str(r.version),
                str(r.baseline_version),
                r.status.value,
                f"{r.share:.0%}",
                f"{r.started_at:%m-%d %H:%M:%S}",
                f"{r.ended_at:%m-%d %H:%M:%S}" if r.ended_at else "",
                r.reason or "",
            )
        console.print(table)


def _act(name: str, doc: str) -> None:
    def command(
        home: HomeOpt, model: ModelOpt, rollout_id: IdArg = None, database_url: DbOpt = None, reason: ReasonOpt = None
    ) -> None:
        with open_services(settings_for(home, database_url)) as services:
            target = _resolve(services, model, rollout_id)
            method = getattr(services.rollouts, name)
            show_rollout(method(model, target.id, actor=actor(), reason=reason or f"{name} from the CLI"))

    command.__doc__ = doc
    app.command(name)(command)


_act("pause", "Hold the traffic split; no automatic step or promotion (guardrails still act).")
_act("resume", "Let a paused rollout step and decide again.")
_act("promote", "Make the rollout's challenger champion now.")
_act("rollback", "Take the challenger off traffic now (it is marked rejected).")
_act("stop", "End the rollout without a decision.")


def sample_size(
    baseline: Annotated[float, typer.Option("--baseline", help="Current accuracy, e.g. 0.85.")],
    delta: Annotated[float, typer.Option("--delta", help="Change to detect, e.g. 0.02 for +2 points.")],
    power: Annotated[float, typer.Option("--power")] = 0.8,
    alpha: Annotated[float, typer.Option("--alpha")] = 0.05,
) -> None:
    """How much labelled feedback per arm to detect a change in accuracy."""
    from learnloop.evaluation.power import plan_sample_size

    try:
        plan = plan_sample_size(baseline, delta, alpha=alpha, power=power)
    except ValueError as exc:
        fail(str(exc))
    console.print(plan.summary())
