"""Feedback to a better answer: ``incremental`` (partial_fit on the new feedback and a replay
buffer) against full retrains (``tfidf-logreg``), in the replay.

For one scenario of bench/scenarios_bench.py (default ``topic``: Yelp -> Amazon phones -> IMDB
movies) and each seed, one in-process replay per configuration (30% feedback, 10% of it wrong,
the replay's policy: a retrain per 50 labels, cooldown 10 simulated s). For each promotion the
replay report records the items and seconds from the feedback that triggered the retrain to
the promoted version's first answer; in process the stream waits for each fit (simulated time
stands still), so the figures "with the fit" add what a stream at the replay's rate (5 items/s)
would have sent during the fit's wall seconds on this machine. Printed per configuration: the
median and worst latency over promotions, the fit and gate's wall seconds, how many items (and
labels) into the shift the first version promoted after it answered, and post-shift accuracy.

``--retrain-every N`` adds each family again with a retrain per N labels: a cheap update can
run more often, which is where incremental's speed would buy a shorter wait.

    .venv/bin/python bench/latency_bench.py --quick                 # seed 0, 300 items a segment
    .venv/bin/python bench/latency_bench.py --seeds 0 1 2 --retrain-every 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import scenarios_bench as sc  # noqa: E402  (after bench/ is on the path; it removes it again)

FAMILIES = ("tfidf-logreg", "incremental")


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _f(x: float | None, fmt: str = ".1f") -> str:
    return "-" if x is None else format(x, fmt)


def load_pct() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="topic", choices=("topic", "label-prior", "concept"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--quick", action="store_true", help="300 items per stream file")
    p.add_argument("--limit", type=int, default=None, help="items per stream file")
    p.add_argument("--retrain-every", type=int, nargs="*", default=[], help="also replay each family at these")
    p.add_argument("--feedback-rate", type=float, default=0.3)
    p.add_argument("--noise", type=float, default=0.1)
    p.add_argument("--data", type=Path, default=None, help="shared datasets folder")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latency")
    args = p.parse_args(argv)
    args.search = 0.0  # scenarios_bench.replay reads it (candidates only)
    if args.quick and args.limit is None:
        args.limit = 300
    scenario = sc.build_scenarios(args.data or sc.bd.default_data_dir(), args.out / "data")[args.scenario]
    runs = [(family, None) for family in FAMILIES]
    runs += [(family, {"retrain_every": n}) for n in args.retrain_every for family in FAMILIES]
    rows: list[dict[str, Any]] = []
    print(f"{args.scenario}: {scenario.kind}; {load_pct()} at the start", flush=True)
    for seed in args.seeds:
        for family, extra in runs:
            started = time.perf_counter()
            row = sc.replay(scenario, family, seed, args, extra)
            row["label"] = family + sc.suffix(extra)
            row["load"] = load_pct()
            rows.append(row)
            lat = row["promotion_latency"]
            first = lat["first_after_shift"]
            print(
                f"seed {seed} {row['label']:<32} loop {100 * row['loop']:.1f}% (naive {100 * row['naive']:.1f}%, "
                f"oracle {100 * row['oracle']:.1f}%); {row['promoted']}/{row['retrains']} promoted; "
                f"feedback -> better answer median {_f(lat['median_items_with_fit'], 'g')} items, "
                f"{_f(lat['median_seconds_with_fit'])} s (worst {_f(lat['max_seconds_with_fit'])} s; without the "
                f"fit {_f(lat['median_items'], 'g')} items); "
                f"fit+gate median {_f(lat['median_retrain_wall_seconds'], '.2f')} s; "
                f"first promoted after the shift answered "
                + (f"{first['items']} items ({first['labels']} labels) in" if first else "never")
                + f"  [{time.perf_counter() - started:.0f}s, {row['load']}]",
                flush=True,
            )  # fmt: skip
    print("\n| config | seeds | post-shift accuracy | promoted / retrains | feedback -> better answer: items "
          "(median) | seconds (median, worst) | fit + gate s (median) | first promoted after the shift: items "
          "(labels) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for label in dict.fromkeys(r["label"] for r in rows):
        group = [r for r in rows if r["label"] == label]
        lats = [r["promotion_latency"] for r in group]
        items = [x for lat in lats for x in [lat["median_items_with_fit"]] if x is not None]
        secs = [x for lat in lats for x in [lat["median_seconds_with_fit"]] if x is not None]
        worst = [x for lat in lats for x in [lat["max_seconds_with_fit"]] if x is not None]
        fits = [x for lat in lats for x in [lat["median_retrain_wall_seconds"]] if x is not None]
        firsts = [lat["first_after_shift"] for lat in lats if lat["first_after_shift"]]
        print(
            f"| {label} | {len(group)} | {100 * statistics.fmean(r['loop'] for r in group):.1f}% "
            f"| {sum(r['promoted'] for r in group)} / {sum(r['retrains'] for r in group)} "
            f"| {_f(_median(items), 'g')} | {_f(_median(secs))}, {_f(max(worst, default=None))} "
            f"| {_f(_median(fits), '.2f')} "
            f"| {_f(_median([f['items'] for f in firsts]), 'g')} ({_f(_median([f['labels'] for f in firsts]), 'g')}) |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
