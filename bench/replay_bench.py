"""Replay benchmark: does the loop beat a static model after a real domain shift?

For each drift scenario of ``bench/datasets.py`` (real data from ../shared/datasets), replay the
stream through learnloop in process (the same services that decide in a server: triggers,
retrain pipeline, gate, promotion) with simulated users, and print, after the shift: static,
loop and oracle prequential accuracy with 95% CIs, the loop's relative gain over static with
McNemar's exact test, the share of the static-to-oracle gap closed, labels needed to come
within 2 points of the oracle, and the retrains with their verdicts.

    .venv/bin/python bench/replay_bench.py                      # every scenario, 30% feedback, 10% noise
    .venv/bin/python bench/replay_bench.py --scenario uci-three-domains --seeds 0 1 2
    .venv/bin/python bench/replay_bench.py --set feedback_weight=... --feedback-rate 0.1

Each replay's JSON summary, learning curve (PNG) and HTML report go to
bench/results/replay/<scenario>-seed<N>/.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from datasets import build, default_data_dir, scenarios  # noqa: E402

from learnloop.replay import DataFile, Order, ReplayConfig, UserModel, run_replay  # noqa: E402

# Per scenario: items between oracle refits (SST-2's 54k-row bootstrap makes each fit ~4 s).
ORACLE_EVERY = {"sst2-to-amazon": 250}
BAR = 0.10  # the relative gain over static our users ask of a feedback loop


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _acc(block: dict[str, Any]) -> str:
    low, high = block["ci95"]
    return f"{_pct(block['accuracy'])} [{100 * low:.1f}-{100 * high:.1f}]"


def run(name: str, data: Path, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    sc = scenarios(data)[name]
    policy: dict[str, Any] = {}
    for item in args.set or []:
        key, _, raw = item.partition("=")
        policy[key] = json.loads(raw)
    config = ReplayConfig(
        bootstrap=DataFile(sc.bootstrap),
        pre_shift=[DataFile(p) for p in sc.pre_shift],
        stream=[DataFile(p) for p in sc.stream],
        out=ROOT / "bench" / "results" / "replay" / f"{name}-seed{seed}",
        users=UserModel(feedback_rate=args.feedback_rate, noise=args.noise, delay=args.delay),
        order=Order.KEEP,  # datasets.py shuffled the review sets; tweets stay in time order
        policy=policy,
        oracle_every=ORACLE_EVERY.get(name, 100),
        window=200,
        seed=seed,
        title=f"{name}, seed {seed}: {int(100 * args.feedback_rate)}% feedback, {int(100 * args.noise)}% noise",
    )
    started = time.perf_counter()
    result = run_replay(config)
    s = result.summary
    s["bench_seconds"] = round(time.perf_counter() - started, 1)
    s["plot"] = str(result.plot_path)
    return s


def report(name: str, seed: int, s: dict[str, Any]) -> None:
    post, cmp = s["post_shift"], s["loop_vs_static"]
    retrains = s["retrains"]
    decisions: dict[str, int] = {}
    for r in retrains:
        decisions[str(r["decision"])] = decisions.get(str(r["decision"]), 0) + 1
    gain = cmp["relative_gain"]
    meets = gain is not None and gain >= BAR and cmp["p_value"] < 0.05
    print(f"\n== {name} (seed {seed}): {s['post_shift_items']} items after the shift, {s['bench_seconds']}s")
    print(f"   static {_acc(post['static'])}   loop {_acc(post['loop'])}   oracle {_acc(post['oracle'])}")
    print(
        f"   loop vs static: {100 * cmp['difference']:+.1f} pts, {_pct(gain)} relative "
        f"(bar {_pct(BAR)}: {'met' if meets else 'NOT met'}), McNemar one-sided p={cmp['p_value']:.2g}; "
        f"gap to oracle closed {_pct(s['oracle_gap_closed'])}"
    )
    for seg in s["segments"]:
        print(
            f"   {seg['name']:<20} n={seg['stop'] - seg['start']:>6} labels={seg['labels_sent']:>5}  "
            f"static {_pct(seg['static']['accuracy'])}  loop {_pct(seg['loop']['accuracy'])}  "
            f"oracle {_pct(seg['oracle']['accuracy'])}"
        )
    for r in s["labels_to_recover"]:
        got = f"{r['labels']} labels ({r['items']} items)" if r["recovered"] else "not reached"
        print(f"   within 2 pts of the oracle on {r['segment']}: {got}")
    waits = [r["items_to_serving"] for r in retrains if r.get("items_to_serving") is not None]
    print(
        f"   retrains {len(retrains)}: {decisions}; trigger -> serving {waits or '-'} items; "
        f"rejected versions served: {s['safety']['rejected_versions_served'] or 'none'}"
    )
    print(f"   plot: {s['plot']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--scenario", action="append", choices=sorted(scenarios()), help="default: all")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--feedback-rate", type=float, default=0.3)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--delay", type=int, default=0)
    parser.add_argument("--set", action="append", help="policy KEY=JSON for the replayed model")
    parser.add_argument("--data", type=Path, default=None, help="shared datasets folder")
    args = parser.parse_args(argv)
    data = ROOT / "bench" / "data"
    build(args.data or default_data_dir(), data)
    rows = []
    for name in args.scenario or sorted(scenarios()):
        for seed in args.seeds:
            s = run(name, data, seed, args)
            report(name, seed, s)
            cmp = s["loop_vs_static"]
            rows.append((name, seed, s["post_shift"], cmp, s["oracle_gap_closed"], len(s["retrains"])))
    print("\n| scenario | seed | static | loop | oracle | relative gain | p | gap closed | retrains |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, seed, post, cmp, closed, n in rows:
        print(
            f"| {name} | {seed} | {_acc(post['static'])} | {_acc(post['loop'])} | {_acc(post['oracle'])} | "
            f"{_pct(cmp['relative_gain'])} | {cmp['p_value']:.2g} | {_pct(closed)} | {n} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
