"""learnloop replay --task generation: a real preference stream through the generative loop,
printed as it happens, with the held-out comparison of the loop, the static base and the oracle."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from learnloop.cli.common import console, fail, parse_assignments, pct
from learnloop.cli.replay_progress import ConsoleObserver, observed, print_json, print_safety_and_files
from learnloop.errors import LearnloopError
from learnloop.replay.drivers import LoopEvent


class GenerationConsole(ConsoleObserver):
    """The classification replay's progress bars and event lines, over pairs instead of items."""

    def pair(self, done: int, total: int, version: int) -> None:
        self._advance("replaying pairs", done, total, f"v{version} serving")

    def step(self, what: str, done: int, total: int) -> None:
        self._advance(what, done, total)

    def event(self, event: LoopEvent, item: int) -> None:
        if event.kind == "retrain_queued":
            self.progress.console.print(f"[bold]pair {item:>5}: retrain queued[/] [dim]{(event.reason or '')[:110]}[/]")
            return
        if event.kind == "candidate_rejected":  # the gate's preference check says why
            reasons = (event.reason or "").split("; ")
            detail = next((r for r in reasons if "preference accuracy" in r), reasons[0])
            self.progress.console.print(
                f"[yellow]pair {item:>5}: candidate rejected v{event.version}[/] [dim]{detail[:150]}[/]"
            )
            return
        super().event(event, item)


def _ci(figures: dict[str, Any]) -> str:
    low, high = figures["ci95"]
    return f"{pct(figures['accuracy'])} ({pct(low)}-{pct(high)})"


def _versus(name: str, c: dict[str, Any]) -> str:
    low, high = c["ci95"]
    return (
        f"{name}: {100 * c['difference']:+.1f} points (95% CI {100 * low:+.1f} to {100 * high:+.1f}), "
        f"{c['wins']} wins / {c['losses']} losses, McNemar p(better)={c['p_better']:.2g}, "
        f"two-sided p={c['p_two_sided']:.2g}"
    )


def print_generation_summary(summary: dict[str, Any], summary_path: Path, plot_path: Path, html_path: Path) -> None:
    from learnloop.cli.tables import Table

    held = summary["held_out"]
    data = summary["data"]
    table = Table(
        title=f"held-out preference accuracy ({held['static']['n']} pairs of {data['dataset']} never trained on)"
    )
    for col in ("", "static base", f"learnloop (v{summary['final_champion']})", "oracle"):
        table.add_column(col, justify="right")
    table.add_row("accuracy (Wilson 95%)", *(_ci(held[k]) for k in ("static", "loop", "oracle")))
    table.add_row("mean margin (nats)", *(f"{held[k]['mean_margin']:+.2f}" for k in ("static", "loop", "oracle")))
    console.print(table)
    console.print(_versus("learnloop vs static", summary["loop_vs_static"]))
    console.print(_versus("oracle vs static", summary["oracle_vs_static"]))
    console.print(_versus("learnloop vs oracle", summary["loop_vs_oracle"]))
    closed = summary["oracle_gap_closed"]
    console.print(f"gap to the oracle closed: {'-' if closed is None else pct(closed)}")
    retrains = summary["retrains"]
    promoted = sum(r["promoted"] for r in retrains)
    fb = summary["feedback"]
    console.print(
        f"retrains: {len(retrains)} ({promoted} promoted, {len(retrains) - promoted} not); "
        f"pairs sent: {fb['pairs_sent']} ({fb['events_sent']} feedback events, {fb['untruthful_pairs']} pairs "
        f"answered against the data)" + (f"; refused: {fb['refused']}" if fb["refused"] else "")
    )
    for r in retrains:
        fit = f"; fit and gate {r['retrain_wall_seconds']:.0f} s" if r["retrain_wall_seconds"] is not None else ""
        console.print(f"  after pair {r['trigger_pair']}: v{r['version'] or '-'} {r['decision']}{fit}")
    oracle = summary["oracle"]
    console.print(f"oracle: fitted on {oracle['pairs']} pairs in {oracle['seconds']:.0f} s")
    print_safety_and_files(summary["safety"]["rejected_versions_served"], summary_path, plot_path, html_path)


def replay_generation(
    *,
    out: Path,
    dataset: str,
    data_dir: Path | None,
    base: str | None,
    limit: int | None,
    held_out: float,
    max_chars: int,
    feedback: str,
    noise: float,
    retrain_every: int,
    assignments: list[str],
    seed: int,
    database_url: str | None,
    json_out: bool,
) -> None:
    from learnloop.replay.generation import FeedbackRule, GenerationReplayConfig, run_generation_replay

    try:
        rule = FeedbackRule(feedback)
    except ValueError:
        fail(f"--feedback must be one of {', '.join(r.value for r in FeedbackRule)}")
    try:
        config = GenerationReplayConfig(
            out=out,
            dataset=dataset,
            data_dir=data_dir,
            limit=limit,
            held_out_fraction=held_out,
            max_chars=max_chars,
            feedback=rule,
            noise=noise,
            retrain_every=retrain_every,
            policy=parse_assignments(assignments),
            seed=seed,
            database_url=database_url,
        )
        if base:
            config = replace(config, base=base)
        result = observed(None if json_out else GenerationConsole(), lambda o: run_generation_replay(config, o))
    except LearnloopError as exc:
        fail(exc.message)
    if json_out:
        print_json(result.summary)
    else:
        print_generation_summary(result.summary, result.summary_path, result.plot_path, result.html_path)
