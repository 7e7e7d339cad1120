"""learnloop demo --task generation: the innkeeper NPC, printed as it happens."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learnloop.cli.common import console, fail, print_how_to_run
from learnloop.errors import LearnloopError

if TYPE_CHECKING:
    from learnloop.replay.npc.players import Encounter

_STYLES = {
    "promoted": "green",
    "candidate_rejected": "yellow",
    "rolled_back": "red",
    "rollout_started": "cyan",
    "rollout_step": "cyan",
    "version_registered": "blue",
    "retrain_queued": "bold",
}


class NpcConsole:
    """One line per event and training step; every few seconds, an encounter: what was said and rated."""

    def __init__(self, every_seconds: float = 4.0) -> None:
        self._lock = threading.Lock()
        self._every = every_seconds
        self._shown = -every_seconds

    def stage(self, message: str) -> None:
        console.print(f"[dim]{message}[/]")

    def encounter(self, encounter: Encounter, total: int) -> None:
        a = encounter.answers[0]
        with self._lock:
            if a.at - self._shown < self._every:
                return
            self._shown = a.at
        names = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        ratings = ", ".join(f"{names[i]} {answer.rating}" for i, answer in enumerate(encounter.answers))
        preference = encounter.preference
        choice = "" if preference is None else f"; prefers {names[preference[0]]} to {names[preference[1]]}"
        with self._lock:
            console.print(
                f"[dim]{a.at:5.0f}s[/] {total:>4} encounters | {a.player}: [italic]{a.line}[/] -> v{a.version} "
                f"({a.route}) A: {a.text.strip()[:70]!r}; rated {ratings}{choice}",
                highlight=False,
            )

    def event(self, event: dict[str, Any], at: float) -> None:
        kind = event["kind"]
        if kind not in _STYLES and not kind.endswith("_failed"):
            return
        if kind in ("promoted", "version_registered") and event["version"] == 1:  # the model's creation
            return
        version = f" v{event['version']}" if event["version"] else ""
        reasons = [r for r in (event["reason"] or "").split("; ") if r]
        detail = next((r for r in reasons if r.startswith("held-out preference")), reasons[0] if reasons else "")
        with self._lock:
            console.print(
                f"[dim]{at:5.0f}s[/] [{_STYLES.get(kind, 'red')}]{kind.replace('_', ' ')}{version}[/] "
                f"[dim]{detail[:160]}[/]",
                highlight=False,
            )

    def job(self, message: str, at: float) -> None:
        with self._lock:
            console.print(f"[dim]{at:5.0f}s   retrain: {message}[/]", highlight=False)


def _ci(interval: list[float] | None, fmt: str = "{:.2f}") -> str:
    return "-" if not interval else f"[{fmt.format(interval[0])}, {fmt.format(interval[1])}]"


def _p(p: float | None) -> str:
    return "-" if p is None else f"{p:.2g}"


def print_npc_summary(summary: dict[str, Any], summary_path: Path, plot_path: Path) -> None:
    first, final = summary["first_champion"], summary["final_champion"]
    players = summary["players"]
    console.print(
        f"\n[bold]summary[/] ({summary['timing']['total_seconds']:.0f} s; players stopped: {summary['why_stopped']})\n"
        f"players: {players['encounters']} encounters, {players['answers']} answers rated, "
        f"{players['preferences']} preferences"
    )
    for r in summary["retrains"]:
        stages = ", ".join(f"{s['stage']} {s['steps']} steps on {s['examples']}" for s in r["stages"])
        gate = {True: "[green]passed the gate[/]", False: "[yellow]rejected by the gate[/]"}.get(
            r["passed_gate"], r["status"]
        )
        console.print(
            f"retrain ({r['requested_by']}): v{r['version'] or '-'} {gate}; {stages or r['error'] or ''}"
            + (f"; fit {r['train_seconds']:.0f} s" if r["train_seconds"] else "")
        )
    rollout = summary["rollout"]
    if rollout is not None:
        test = rollout["live_test"] or {}
        console.print(
            f"rollout: {rollout['strategy']} of v{rollout['version']} -> {rollout['status']}"
            + (f" (live: n={test.get('n_a')}/{test.get('n_b')} judged answers per arm)" if test else "")
        )
    console.print(f"promoted by: {summary['promoted_by'] or 'nothing was promoted: v1 is still champion'}")
    for name, c in (("first champion", first), ("final champion", final)):
        rating, pref = c["rating"], c.get("held_out_preference_accuracy")
        mean = "-" if rating["mean"] is None else f"{rating['mean']:.2f}"
        line = (
            f"{name} v{c['version']}: mean rating {mean} (95% CI {_ci(rating['ci95'])}, n={rating['n']}); "
            f"breaks the scene {100 * (c['breaks_scene']['share'] or 0):.0f}% of answers"
        )
        if pref is not None:
            line += (
                f"; held-out preference accuracy {pref['accuracy']:.2f} "
                f"(95% CI {_ci(pref['ci95'])}, n={pref['n']} pairs)"
            )
        console.print(line)
    diff = summary["rating_difference"]
    if diff is not None and diff["difference"] is not None:
        console.print(
            f"rating difference: {diff['difference']:+.2f} (95% CI {_ci(diff['ci95'], '{:+.2f}')}), "
            f"Welch p={_p(diff['welch_p'])}, Mann-Whitney p={_p(diff['mann_whitney_p'])}"
        )
    held = summary["held_out_preference"]
    if held is not None:
        console.print(
            f"held-out preference accuracy, v{held['candidate_version']} vs v1: {held['difference']:+.2f} "
            f"({100 * (held['difference_ci_confidence'] or 0):.0f}% CI {_ci(held['difference_ci'], '{:+.2f}')}), "
            f"McNemar one-sided p={_p(held['mcnemar_p_better'])} ({held['wins_losses'][0]} wins, "
            f"{held['wins_losses'][1]} losses)"
        )
        shift = held.get("shift")
        if shift:
            console.print(
                f"held-out preference shift{' (judged)' if shift['judged'] else ''}: v{held['candidate_version']} "
                f"moved {shift['toward']} pairs' margins toward the chosen answer and {shift['away']} away "
                f"({shift['share']:.2f}, CI {_ci(shift['ci'], '{:.2f}')}), sign test p={_p(shift['p_better'])}"
            )
    judge = summary.get("held_out_judge")
    if judge is not None and judge["difference"] is not None:
        console.print(
            f"judge{' (judged)' if judge['judged'] else ''} (a reward model of the players' ratings, held-out AUC "
            f"{judge['judge_auc'] or float('nan'):.2f}): v{judge['candidate_version']} {judge['candidate']:.3f} vs "
            f"v1 {judge['champion']:.3f} on {judge['n']} answers to held-out prompts, difference "
            f"{judge['difference']:+.3f} ({100 * (judge['ci_confidence'] or 0):.0f}% CI "
            f"{_ci(judge['ci'], '{:+.3f}')}), Wilcoxon one-sided p={_p(judge['p_better'])}"
        )
    console.print(f"summary: {summary_path}\nlearning curve: {plot_path}")


def npc_demo(out: Path, port: int | None, serve: bool, seed: int, base: str | None) -> None:
    console.print(
        "[bold]learnloop demo --task generation[/]: a small LLM plays Bram, the innkeeper of a fantasy inn. "
        "Simulated players ask for four answers at once, rate each (1-5) and prefer the best to the worst; "
        "their hidden taste: be greeted and hosted as at an inn, never hear about AIs, code or the modern "
        "world. The loop retrains a LoRA adapter on their feedback (SFT on the answers they liked, then KTO on "
        "every rated one), the gate's judge (a reward model of their ratings) scores both versions' sampled "
        "answers to held-out lines, and a canary on half the players promotes it unless their live ratings "
        "show harm."
    )
    from learnloop.replay.npc import NpcDemoConfig, run_npc_demo  # the loop: not for --help
    from learnloop.replay.npc.run import MODEL

    config = NpcDemoConfig(out=out, port=port, seed=seed)
    if base:
        config = replace(config, base=base)
    try:
        result = run_npc_demo(config, NpcConsole(), keep_server=serve)
    except LearnloopError as exc:
        fail(exc.message)
    print_npc_summary(result.summary, result.summary_path, result.plot_path)
    server = result.server
    try_commands = ('generate "Are you an AI?" --max-new-tokens 32', "versions", "status")
    if server is None:
        print_how_to_run(config.out / "home", *try_commands)
        return
    console.print(
        f"\nThe server is still running on [bold]{server.url}[/] (API docs: {server.url}/docs). Ask it:\n"
        f"  curl -s -X POST {server.url}/v1/models/{MODEL}/generate -H 'content-type: application/json' "
        '-d \'{"prompt": "Are you an AI?", "max_new_tokens": 32}\'',
        soft_wrap=True,  # one line however narrow the terminal: it pastes
    )
    print_how_to_run(config.out / "home", *try_commands)
    console.print("Ctrl-C stops the server.")
    server.wait()
