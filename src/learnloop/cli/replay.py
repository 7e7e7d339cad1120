"""learnloop replay | demo."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from learnloop.cli.common import console, fail, parse_assignments, pct, print_how_to_run
from learnloop.cli.replay_progress import ConsoleObserver, observed, print_json, print_safety_and_files
from learnloop.cli.tables import Table
from learnloop.datasets.shipped import UCI_LABEL_NAMES, uci_sentiment_path
from learnloop.domain import DEFAULT_FAMILY
from learnloop.errors import LearnloopError
from learnloop.replay.drivers import MODES
from learnloop.replay.stream import DataFile, Order
from learnloop.replay.users import UserModel

if TYPE_CHECKING:
    from learnloop.replay.service import ReplayResult

# The replay's service (the loop, the families, numpy) is imported by the commands that run
# one, not with this module: ``learnloop --help`` reads the options only.


def _file(
    path: Path, text_column: str, label_column: str, fmt: str | None, no_header: bool, quoting: str | None
) -> DataFile:
    return DataFile(path, text_column, label_column, fmt, not no_header, quoting)


def print_summary(result: ReplayResult) -> None:
    from learnloop.replay.report import naive_sentence

    s = result.summary
    table = Table(title="prequential accuracy (each item scored before its feedback existed)")
    shown = [k for k in ("static", "naive", "loop", "oracle") if k in s["post_shift"]]
    names = {"static": "static", "naive": "naive", "loop": "learnloop", "oracle": "oracle"}
    for col in ("segment", "items", "feedback", *(names[k] for k in shown)):
        table.add_column(col, justify="left" if col == "segment" else "right")
    for seg in s["segments"]:
        table.add_row(
            seg["name"],
            str(seg["stop"] - seg["start"]),
            str(seg["labels_sent"]),
            *(pct(seg[k]["accuracy"]) for k in shown),
        )
    post = s["post_shift"]
    table.add_row(
        "[bold]after the shift[/]",
        str(s["post_shift_items"]),
        "",
        *(f"[bold]{pct(post[k]['accuracy'])}[/] ({pct(post[k]['ci95'][0])}-{pct(post[k]['ci95'][1])})" for k in shown),
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
    if "loop_vs_naive" in s:
        console.print(naive_sentence(s["loop_vs_naive"]), markup=False)
    retrains = s["retrains"]
    promoted = sum(r["promoted"] for r in retrains)
    console.print(
        f"retrains: {len(retrains)} ({promoted} promoted, {len(retrains) - promoted} not); "
        f"feedback sent: {s['feedback']['sent']} ({s['feedback']['untruthful']} wrong)"
    )
    in_process = s["config"]["mode"] == "in-process"
    for r in retrains:
        if r.get("items_to_serving") is not None:
            console.print(
                f"  v{r['version']}: served {r['items_to_serving']} items "
                f"({r['seconds_to_serving']:.1f} s{' simulated' if in_process else ''}) "
                f"after the feedback that triggered it; fit and gate took {r['retrain_wall_seconds']:.1f} s"
                + (
                    f" (with the stream going on meanwhile: {r['items_to_serving_with_fit']} items, "
                    f"{r['seconds_to_serving_with_fit']:.1f} s)"
                    if in_process
                    else ""
                )
            )
    latency = s.get("promotion_latency") or {}
    if latency.get("promotions"):
        first = latency["first_after_shift"]
        console.print(
            f"feedback to a better answer: median {latency['median_items_with_fit']:g} items, "
            f"{latency['median_seconds_with_fit']:.1f} s over {latency['promotions']} promotions"
            + (
                f"; the first version promoted after the shift answered {first['items']} items "
                f"({first['labels']} labels) into it"
                if first
                else ""
            )
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
    print_safety_and_files(
        s["safety"]["rejected_versions_served"], result.summary_path, result.plot_path, result.html_path
    )


def replay(
    bootstrap: Annotated[
        Path | None, typer.Option("--bootstrap", help="classification: labelled file to train version 1 on.")
    ] = None,
    stream: Annotated[
        list[Path] | None,
        typer.Option("--stream", help="classification: stream file after the shift; repeat to chain."),
    ] = None,
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
    noise: Annotated[
        float | None,
        typer.Option(
            "--noise", help="Share of feedback against the truth (default: 0.1 classification, 0 generation)."
        ),
    ] = None,
    thumbs: Annotated[bool, typer.Option("--thumbs", help="Users give thumbs up/down, not labels.")] = False,
    adversarial: Annotated[float, typer.Option("--adversarial", help="Share of users who always lie.")] = 0.0,
    ask: Annotated[
        str,
        typer.Option(
            "--ask", help="Which answers users label: random, or uncertain (the loop asks about its smallest margins)."
        ),
    ] = "random",
    order: Annotated[Order, typer.Option("--order", help="Order inside each stream file.")] = Order.SHUFFLE,
    limit: Annotated[
        int | None,
        typer.Option("--limit", help="At most this many items per stream file (generation: pairs, default 200)."),
    ] = None,
    rate: Annotated[float, typer.Option("--rate", help="Items per second (simulated in process).")] = 5.0,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Policy KEY=VALUE, repeatable.")] = None,
    family: Annotated[
        str, typer.Option("--family", help="classification: the model family (learnloop families lists them).")
    ] = DEFAULT_FAMILY,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="classification: KEY=VALUE family parameter (value as JSON), repeatable; also the baselines'.",
        ),
    ] = None,
    window: Annotated[int, typer.Option("--window", help="Items per accuracy window.")] = 100,
    oracle_every: Annotated[int, typer.Option("--oracle-every", help="Items between oracle refits.")] = 100,
    naive_every: Annotated[
        int | None,
        typer.Option("--naive-every", help="Labels between naive refits (default: the policy's retrain_every)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="An empty database to use (default: SQLite in --out).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the JSON summary instead of tables.")] = False,
    task: Annotated[
        str,
        typer.Option(
            "--task",
            help="classification (labelled files) or generation (a preference stream through a generative "
            "model on a base LLM; needs the learnloop\\[llm] extra).",
        ),
    ] = "classification",
    dataset: Annotated[
        str,
        typer.Option("--dataset", help="generation: hh, orca (in --data-dir), orca-sample (shipped) or a JSONL file."),
    ] = "orca",
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="generation: folder of hh and orca (default: shared/datasets/preference)."),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option("--base", help="generation: the base model (default smollm2-135m-instruct) or a local directory."),
    ] = None,
    held_out: Annotated[
        float, typer.Option("--held-out", help="generation: share of the pairs held out, never sent or trained on.")
    ] = 0.25,
    max_chars: Annotated[
        int, typer.Option("--max-chars", help="generation: drop longer pairs (conversation + the longer answer).")
    ] = 1600,
    feedback: Annotated[
        str,
        typer.Option(
            "--feedback",
            help="generation: what users send per pair: preference, ratings (chosen 5, rejected 2) or both.",
        ),
    ] = "both",
    retrain_every: Annotated[
        int, typer.Option("--retrain-every", help="generation: pairs of feedback that trigger a retrain.")
    ] = 50,
) -> None:
    """Replay a real labelled stream through the loop with simulated users; measure it against
    a static model and an oracle; write a JSON summary and a learning-curve plot. With ``--task
    generation``: a real preference stream (prompt, chosen, rejected) through a generative model,
    measured on held-out pairs against the static base and an oracle adapter."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if task == "generation":
        from learnloop.cli.replay_generation import replay_generation

        replay_generation(
            out=out,
            dataset=dataset,
            data_dir=data_dir,
            base=base,
            limit=200 if limit is None else limit,
            held_out=held_out,
            max_chars=max_chars,
            feedback=feedback,
            noise=0.0 if noise is None else noise,
            retrain_every=retrain_every,
            assignments=set_ or [],
            seed=seed,
            database_url=database_url,
            json_out=json_out,
        )
        return
    if task != "classification":
        fail("--task must be classification or generation")
    if bootstrap is None or not stream:
        fail("classification replays need --bootstrap and at least one --stream file")
    from learnloop.replay.service import ReplayConfig, run_replay

    try:
        config = ReplayConfig(
            bootstrap=_file(bootstrap, text_column, label_column, fmt, no_header, quoting),
            stream=[_file(p, text_column, label_column, fmt, no_header, quoting) for p in stream],
            pre_shift=[_file(p, text_column, label_column, fmt, no_header, quoting) for p in pre_shift or []],
            out=out,
            users=UserModel(feedback_rate, delay, 0.1 if noise is None else noise, thumbs, adversarial, selection=ask),
            mode=mode,
            order=order,
            limit_per_segment=limit,
            policy=parse_assignments(set_ or []),
            family=family,
            params=parse_assignments(param or [], "--param"),
            rate=rate,
            window=window,
            oracle_every=oracle_every,
            naive_every=naive_every,
            seed=seed,
            database_url=database_url,
        )
        result = observed(None if json_out else ConsoleObserver(), lambda o: run_replay(config, o))
    except LearnloopError as exc:
        fail(exc.message)
    if json_out:
        print_json(result.summary)
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
            "its players' taste; needs the learnloop\\[llm] extra).",
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

    from learnloop.replay.service import ReplayConfig, run_replay

    def shipped(domain: str) -> DataFile:
        return DataFile(
            uci_sentiment_path(domain), "0", "1", "tsv", header=False, name=domain, label_names=UCI_LABEL_NAMES
        )

    console.print(
        "[bold]learnloop demo[/]: version 1 learns restaurant reviews (Yelp); then the traffic turns to phone "
        f"reviews (Amazon) and movie reviews (IMDB). Simulated users label {feedback_rate:.0%} of the answers, "
        f"{noise:.0%} of them wrongly. The loop retrains on their feedback and promotes a version only when "
        "the gate passes it: a refresh must not be shown worse, another model must be shown better."
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
