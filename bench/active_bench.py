"""Random vs uncertainty feedback at the same label budget, in replays of the shipped UCI data
(Yelp bootstrap; Amazon phones then IMDB as the stream), several seeds. Prints the figures;
asserts nothing.

    .venv/bin/python bench/active_bench.py [--seeds 0 1 2] [--rates 0.1 0.3] [--out /tmp/active-bench]

For each seed and budget (``--rates``: labels per served item) both selections replay the same
stream order with the same users (10% noise), default replay policy. Reported per run:
prequential accuracy after the shift (loop, static, oracle), labels sent, the median margin of
the answers labelled, labels needed to come within 2 points of the oracle per segment, and the
retrains promoted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from learnloop.datasets.shipped import uci_sentiment_path
from learnloop.replay import DataFile, ReplayConfig, UserModel, run_replay


def shipped(domain: str) -> DataFile:
    return DataFile(uci_sentiment_path(domain), "0", "1", "tsv", header=False, name=domain)


def run_one(out: Path, seed: int, rate: float, selection: str, noise: float) -> dict[str, Any]:
    config = ReplayConfig(
        bootstrap=shipped("yelp"),
        stream=[shipped("amazon_cells"), shipped("imdb")],
        out=out,
        users=UserModel(feedback_rate=rate, noise=noise, selection=selection),
        seed=seed,
    )
    started = time.perf_counter()
    s = run_replay(config).summary
    return {
        "seed": seed,
        "rate": rate,
        "selection": selection,
        "loop": s["post_shift"]["loop"]["accuracy"],
        "static": s["post_shift"]["static"]["accuracy"],
        "oracle": s["post_shift"]["oracle"]["accuracy"],
        "labels": s["feedback"]["sent"],
        "median_margin": s["feedback"]["median_margin"],
        "recover": {r["segment"]: r["labels"] for r in s["labels_to_recover"]},
        "promoted": sum(r["promoted"] for r in s["retrains"]),
        "retrains": len(s["retrains"]),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rates", type=float, nargs="+", default=[0.1, 0.3])
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/active-bench"))
    args = parser.parse_args(argv)
    rows = []
    for rate in args.rates:
        for seed in args.seeds:
            for selection in ("random", "uncertain"):
                row = run_one(args.out / f"{selection}-{rate}-{seed}", seed, rate, selection, args.noise)
                rows.append(row)
                print(json.dumps(row), flush=True)
    print()
    print("rate  selection  seed  labels  median margin  static  loop   oracle  promoted  labels to recover")
    for r in rows:
        recover = ", ".join(f"{k} {'-' if v is None else v}" for k, v in r["recover"].items())
        print(
            f"{r['rate']:<5} {r['selection']:<10} {r['seed']:<5} {r['labels']:<7} {r['median_margin']:<14.3f} "
            f"{100 * r['static']:.1f}%  {100 * r['loop']:.1f}%  {100 * r['oracle']:.1f}%  "
            f"{r['promoted']}/{r['retrains']:<6} {recover}"
        )
    print()
    for rate in args.rates:
        for selection in ("random", "uncertain"):
            mine = [r for r in rows if r["rate"] == rate and r["selection"] == selection]
            loop = statistics.mean(r["loop"] for r in mine)
            labels = statistics.mean(r["labels"] for r in mine)
            print(f"rate {rate}, {selection}: mean post-shift accuracy {100 * loop:.1f}% with {labels:.0f} labels")


if __name__ == "__main__":
    main(sys.argv[1:])
