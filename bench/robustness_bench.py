"""Robustness benchmark: conflicts, trust and label noise in the loop, measured by replay.

Replays the shipped UCI sentences (bootstrap: yelp; stream after the shift: amazon_cells then
imdb; 30% feedback) with simulated users under four feedback conditions (clean, 20% uniform
noise, 5% and 20% adversarial subjects who always give the wrong label), for each seed and
each policy setting, and prints post-shift accuracy of the loop against the static model.
No assertions: it prints the table the README quotes.

    .venv/bin/python bench/robustness_bench.py                       # off and on, seeds 0-2
    .venv/bin/python bench/robustness_bench.py --setting off --seeds 0 --condition clean
    .venv/bin/python bench/robustness_bench.py --jobs 2              # two replays at a time

Settings: ``off`` is today's loop (latest wins, weight 1, no noise filter); ``trust`` resolves
conflicts by Dawid-Skene and weights examples by trust; ``trust+down_weight`` and
``trust+hold`` add the noise filter. Each replay's JSON summary goes to
bench/results/robustness/<condition>-<setting>-seed<N>/.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from learnloop.replay import DataFile, Order, ReplayConfig, UserModel, run_replay

ROOT = Path(__file__).resolve().parent.parent
UCI = ROOT / "src" / "learnloop" / "datasets" / "uci_sentiment"
CONDITIONS: dict[str, dict[str, float]] = {
    "clean": {"noise": 0.0, "adversarial": 0.0},
    "noise-0.2": {"noise": 0.2, "adversarial": 0.0},
    "adversarial-0.05": {"noise": 0.0, "adversarial": 0.05},
    "adversarial-0.2": {"noise": 0.0, "adversarial": 0.2},
}
SETTINGS: dict[str, dict[str, Any]] = {
    "off": {"conflict_resolution": "latest", "noise_filter": "off"},
    "trust": {"conflict_resolution": "dawid_skene", "noise_filter": "off"},
    "trust+down_weight": {"conflict_resolution": "dawid_skene", "noise_filter": "down_weight"},
    "trust+hold": {"conflict_resolution": "dawid_skene", "noise_filter": "hold"},
}


def _file(name: str) -> DataFile:
    return DataFile(UCI / f"{name}_labelled.txt", text_column="0", label_column="1", fmt="tsv", header=False)


def run(condition: str, setting: str, seed: int, feedback_rate: float) -> dict[str, Any]:
    users = UserModel(feedback_rate=feedback_rate, **CONDITIONS[condition])
    out = ROOT / "bench" / "results" / "robustness" / f"{condition}-{setting}-seed{seed}"
    config = ReplayConfig(
        bootstrap=_file("yelp"),
        stream=[_file("amazon_cells"), _file("imdb")],
        out=out,
        users=users,
        order=Order.SHUFFLE,
        policy=dict(SETTINGS[setting]),
        seed=seed,
        title=f"{condition}, {setting}, seed {seed}",
    )
    started = time.perf_counter()
    s = run_replay(config).summary
    cmp = s["loop_vs_static"]
    retrains = s["retrains"]
    return {
        "condition": condition,
        "setting": setting,
        "seed": seed,
        "static": s["post_shift"]["static"]["accuracy"],
        "loop": s["post_shift"]["loop"]["accuracy"],
        "difference": cmp["difference"],
        "retrains": len(retrains),
        "promoted": sum(1 for r in retrains if r.get("decision") == "promote"),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _job(args: tuple[str, str, int, float]) -> dict[str, Any]:
    return run(*args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--condition", action="append", choices=list(CONDITIONS), help="default: all")
    parser.add_argument("--setting", action="append", choices=list(SETTINGS), help="default: off and trust")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--feedback-rate", type=float, default=0.3)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    jobs = [
        (condition, setting, seed, args.feedback_rate)
        for condition in args.condition or list(CONDITIONS)
        for setting in args.setting or ["off", "trust"]
        for seed in args.seeds
    ]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = []
        for row in pool.map(_job, jobs):
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print("\n| condition | setting | seed | static | loop | loop - static | retrains (promoted) | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['condition']} | {r['setting']} | {r['seed']} | {100 * r['static']:.1f}% | {100 * r['loop']:.1f}% | "
            f"{100 * r['difference']:+.1f} pts | {r['retrains']} ({r['promoted']}) | {r['seconds']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
