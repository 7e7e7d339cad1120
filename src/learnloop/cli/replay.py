"""learnloop replay | demo."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from learnloop.cli.common import console, fail, parse_assignments, pct, print_how_to_run
from learnloop.cli.tables import Table
from learnloop.datasets.shipped import UCI_LABEL_NAMES, uci_sentiment_path
from learnloop.errors import LearnloopError
from learnloop.replay import DataFile, Order, ReplayConfig, ReplayResult, UserModel, run_replay
from learnloop.replay.drivers import LoopEvent
from learnloop.replay.service import MODES


class ConsoleObserver:
    """Progress bars over the stream and the oracle's refits; loop events printed as they happen."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict[str, Any] = {}

    def _advance(self, description: str, done: int, total: int, note: str = "") -> None:
        if description not in self.tasks:
            self.progress.start()
            self.tasks[description] = self.progress.add_task(description, total=total, note="")
        self.progress.update(self.tasks[description], completed=done, note=note)
        if done == total:
            self.progress.stop()

    def stage(self, message: str) -> None:
        self.progress.console.print(f"[dim]{message}[/]")

    def item(self, done: int, total: int, scored: int, correct: int) -> None:
        self._advance("replaying", done, total, f"online accuracy {pct(correct / scored)}" if scored else "")

    def refit(self, done: int, total: int) -> None:
        self._advance("oracle", done, total)

    def close(self) -> None:
        """Give the terminal back, also when the replay failed half-way."""
        self.progress.stop()

    def event(self, event: LoopEvent, item: int) -> None:
        style = {
            "promoted": "green",
            "candidate_rejected": "yellow",
            "rolled_back": "red",
            "rollout_started": "cyan",
            "rollout_step": "cyan",
        }.get(event.kind)
        if style is None and event.kind != "retrain_queued" and not event.kind.endswith("_failed"):
            return
        if event.version == 1 and event.kind == "promoted":
            return
        reason = (event.reason or "").split("; ")
        text = f"item {item:>5}: {event.kind.replace('_', ' ')}" + (f" v{event.version}" if event.version else "")
        # The check that decided: a failed one for a rejection, the recent-feedback test for a
        # promotion by the gate (a rollout's promotion gives its own reason first).
        if event.kind == "candidate_rejected":
            detail = next((r for r in reason if "NOT" in r or "REGRESSES" in r or "required" in r), reason[-1])
        elif event.kind == "promoted":
            detail = next((r for r in reason if "recent feedback" in r), reason[0])
        else:
            detail = reason[0]
        self.progress.console.print(f"[{style or 'dim'}]{text}[/] [dim]{detail[:110]}[/]")


def _file(
    path: Path, text_column: str, label_column: str, fmt: str | None, no_header: bool, quoting: str | None
) -> DataFile:
    return DataFile(path, text_column, label_column, fmt, not no_header, quoting)


def print_summary(result: ReplayResult) -> None:
    s = result.summary
    table = Table(title="prequential accuracy (each item scored before its feedback existed)")
    for col in ("segment", "items", "feedback", "static", "learnloop", "oracle"):
        table.add_column(col, justify="left" if col == "segment" else "right")
    for seg in s["segments"]:
        table.add_row(
            seg["name"],
            str(seg["stop"] - seg["start"]),
            str(seg["labels_sent"]),
            *(pct(seg[k]["accuracy"]) for k in ("static", "loop", "oracle")),
        )
    post = s["post_shift"]
    table.add_row(
        "[bold]after the shift[/]",
        str(s["post_shift_items"]),
        "",
        *(
            f"[bold]{pct(post[k]['accuracy'])}[/] ({pct(post[k]['ci95'][0])}-{pct(post[k]['ci95'][1])})"
            for k in ("static", "loop", "oracle")
        ),
    )
    console.print(table)
    cmp = s["loop_vs_static"]
    gain = cmp["relative_gain"]
    closed = s["oracle_gap_closed"]
    console.print(
        f"learnloop vs static after the shift: {100 * cmp['difference']:+.1f} points "
        f"({'-' if gain is None else f'{100 * gain:+.1f}%'} relative; 95% CI "
        f"{100 * cmp['difference_ci95'][0]:+.1f} to {100 * cmp['difference_ci95'][1]:+.1f}), "
        f"{cmp['test']}: p={cmp['p_value']:.2g}, n={cmp['n']}; "
        f"gap to the oracle closed: {pct(closed)}"
    )
    retrains = s["retrains"]
    promoted = sum(r["promoted"] for r in retrains)
    console.print(
        f"retrains: {len(retrains)} ({promoted} promoted, {len(retrains) - promoted} not); "
        f"feedback sent: {s['feedback']['sent']} ({s['feedback']['untruthful']} wrong)"
    )
    for r in retrains:
        if r.get("items_to_serving") is not None:
            console.print(
                f"  v{r['version']}: served {r['items_to_serving']} items "
                f"({r['seconds_to_serving']:.1f} s{' simulated' if s['config']['mode'] == 'in-process' else ''}) "
                f"after the feedback that triggered it; fit and gate took {r['retrain_wall_seconds']:.1f} s"
            )
    for r in s["labels_to_recover"]:
        console.print(
            f"  {r['segment']}: "
            + (
                f"within 2 points of the oracle after {r['labels']} labels ({r['items']} items)"
                if r["recovered"]
                else "never within 2 points of the oracle"
            )
        )
    if s["refused"]:
        console.print(f"refused by learnloop (not scored): {s['refused']}")
    served_rejected = s["safety"]["rejected_versions_served"]
    console.print(
        "safety: "
        + (
            "[green]no version the gate rejected was ever served[/]"
            if not served_rejected
            else f"[red]served rejected versions {served_rejected}[/]"
        )
    )
    console.print(f"summary: {result.summary_path}\nlearning curve: {result.plot_path}  (and {result.html_path})")


def replay(
    bootstrap: Annotated[Path, typer.Option("--bootstrap", help="Labelled file to train version 1 on.")],
    stream: Annotated[list[Path], typer.Option("--stream", help="Stream file after the shift; repeat to chain.")],
    pre_shift: Annotated[
        list[Path] | None, typer.Option("--pre-shift", help="In-domain stream file replayed before the shift.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the summary, plots and the replay's home.")] = Path(
        "replay-out"
    ),
    text_column: Annotated[str, typer.Option("--text-column")] = "text",
    label_column: Annotated[str, typer.Option("--label-column")] = "label",
    fmt: Annotated[str | None, typer.Option("--format", help="csv, tsv or jsonl (default: by extension).")] = None,
    no_header: Annotated[bool, typer.Option("--no-header")] = False,
    quoting: Annotated[str | None, typer.Option("--quoting")] = None,
    mode: Annotated[str, typer.Option("--mode", help=f"{' or '.join(MODES)}.")] = "in-process",
    feedback_rate: Annotated[float, typer.Option("--feedback-rate", help="Share of predictions users rate.")] = 0.3,
    delay: Annotated[int, typer.Option("--delay", help="Items between a prediction and its feedback.")] = 0,
    noise: Annotated[float, typer.Option("--noise", help="Share of feedback with a wrong label.")] = 0.1,
    thumbs: Annotated[bool, typer.Option("--thumbs", help="Users give thumbs up/down, not labels.")] = False,
    adversarial: Annotated[float, typer.Option("--adversarial", help="Share of users who always lie.")] = 0.0,
    ask: Annotated[
        str,
        typer.Option(
            "--ask", help="Which answers users label: random, or uncertain (the loop asks about its smallest margins)."
        ),
    ] = "random",
    order: Annotated[Order, typer.Option("--order", help="Order inside each stream file.")] = Order.SHUFFLE,
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many items per stream file.")] = None,
    rate: Annotated[float, typer.Option("--rate", help="Items per second (simulated in process).")] = 5.0,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Policy KEY=VALUE, repeatable.")] = None,
    window: Annotated[int, typer.Option("--window", help="Items per accuracy window.")] = 100,
    oracle_every: Annotated[int, typer.Option("--oracle-every", help="Items between oracle refits.")] = 100,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="An empty database to use (default: SQLite in --out).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the JSON summary instead of tables.")] = False,
) -> None:
    """Replay a real labelled stream through the loop with simulated users; measure it against
    a static model and an oracle; write a JSON summary and a learning-curve plot."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        config = ReplayConfig(
            bootstrap=_file(bootstrap, text_column, label_column, fmt, no_header, quoting),
            stream=[_file(p, text_column, label_column, fmt, no_header, quoting) for p in stream],
            pre_shift=[_file(p, text_column, label_column, fmt, no_header, quoting) for p in pre_shift or []],
            out=out,
            users=UserModel(feedback_rate, delay, noise, thumbs, adversarial, selection=ask),
            mode=mode,
            order=order,
            limit_per_segment=limit,
            policy=parse_assignments(set_ or []),
            rate=rate,
            window=window,
            oracle_every=oracle_every,
            seed=seed,
            database_url=database_url,
        )
        observer = None if json_out else ConsoleObserver()
        try:
            result = run_replay(config, observer)
        finally:
            if observer is not None:
                observer.close()
    except LearnloopError as exc:
        fail(exc.message)
    if json_out:
        console.print_json(json.dumps(result.summary, default=str))
    else:
        print_summary(result)


TRY = ("status", 'predict "The battery lasts all day"', "versions")  # what the demo's end suggests


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's home, summary and plots.")] = Path(
        "learnloop-demo"
    ),
    port: Annotated[int | None, typer.Option("--port", help="Server port (default: a free one).")] = None,
    rate: Annotated[float, typer.Option("--rate", help="Stream items per second.")] = 50.0,
    feedback_rate: Annotated[float, typer.Option("--feedback-rate", help="Share of answers users label.")] = 0.5,
    noise: Annotated[float, typer.Option("--noise", help="Share of those labels that are wrong.")] = 0.1,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Keep the server running afterwards.")] = True,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    task: Annotated[
        str,
        typer.Option(
            "--task",
            help="classification (sentiment reviews) or generation (an innkeeper NPC on SmolLM2 that learns "
            "its players' taste; needs learnloop[llm]).",
        ),
    ] = "classification",
    base: Annotated[
        str | None,
        typer.Option("--base", help="generation: the base model (default smollm2-135m-instruct) or a local directory."),
    ] = None,
) -> None:
    """Bootstrap on Yelp reviews, start the server, stream Amazon phone reviews then IMDB movie
    reviews through HTTP with simulated users, and show what the loop did. With ``--task
    generation``: an innkeeper NPC on a small LLM learns its simulated players' hidden taste."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if task == "generation":
        from learnloop.cli.npc_demo import npc_demo

        default_out = Path("learnloop-demo")
        npc_demo(Path("learnloop-npc-demo") if out == default_out else out, port, serve, seed, base)
        return
    if task != "classification" or base is not None:
        fail("--task must be classification or generation (--base is for generation)")

    def shipped(domain: str) -> DataFile:
        return DataFile(
            uci_sentiment_path(domain), "0", "1", "tsv", header=False, name=domain, label_names=UCI_LABEL_NAMES
        )

    console.print(
        "[bold]learnloop demo[/]: version 1 learns restaurant reviews (Yelp); then the traffic turns to phone "
        f"reviews (Amazon) and movie reviews (IMDB). Simulated users label {feedback_rate:.0%} of the answers, "
        f"{noise:.0%} of them wrongly. The loop retrains on their feedback and promotes a version only when "
        "the gate proves it better."
    )
    try:
        config = ReplayConfig(
            bootstrap=shipped("yelp"),
            stream=[shipped("amazon_cells"), shipped("imdb")],
            out=out,
            mode="http",
            model="sentiment",
            users=UserModel(feedback_rate=feedback_rate, noise=noise),
            # Real seconds here: a retrain at most every 2 s, so a one-minute stream sees many.
            policy={"cooldown_seconds": 2.0},
            rate=rate,
            port=port,
            seed=seed,
            title=f"learnloop demo: Yelp -> Amazon phones -> IMDB, {feedback_rate:.0%} feedback, {noise:.0%} noise",
        )
        observer = ConsoleObserver()
        try:
            result = run_replay(config, observer, keep_server=serve)
        finally:
            observer.close()
    except LearnloopError as exc:
        fail(exc.message)
    print_summary(result)
    server = result.server
    if server is None:
        print_how_to_run(config.out / "home", *TRY)
        return
    console.print(
        f"\nThe server is still running on [bold]{server.url}[/] (API docs: {server.url}/docs). Ask it:\n"
        f"  curl -s -X POST {server.url}/v1/models/sentiment/predict -H 'content-type: application/json' "
        '-d \'{"text": "The battery lasts all day"}\'',
        soft_wrap=True,  # one line however narrow the terminal: it pastes
    )
    print_how_to_run(config.out / "home", *TRY)
    console.print("Ctrl-C stops the server.")
    server.wait()
