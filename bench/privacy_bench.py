"""What differential privacy costs in accuracy: dp-logreg at a few epsilons against tfidf-logreg
(and dp-logreg without noise), on real tweets, over seeds, scored on held-out tweets.

Run from the repository root (dp-logreg needs the privacy extra, Opacus)::

    .venv/bin/python bench/privacy_bench.py                           # ../shared/datasets
    .venv/bin/python bench/privacy_bench.py --seeds 3 --epsilons 1,3,8 --json out.json

Data: Kaggle's US airline tweets (``twitter_us_airline/Tweets.csv.gz``), three classes
(negative 63%, neutral 21%, positive 16%), distinct texts only. Per seed the tweets are shuffled;
the first ``--train`` train and the next ``--test`` are held out. Arms: ``tfidf-logreg`` (the
default family, not private); ``dp-logreg`` at each epsilon (delta 1/(10 n), the family's
defaults otherwise; noise drawn from the seed, ``reproducible_noise``, so a run can be
repeated); and ``dp-logreg`` with ``target_epsilon`` null: the same clipped, sampled training
without noise, which separates the cost of the noise from the cost of the model (hashed
features, a few epochs of SGD, clipping). Per arm: accuracy and macro-F1 per seed, their mean
over seeds with a t interval (df = seeds - 1), the mean paired difference from tfidf-logreg
with its t interval, the epsilon the accountant reports, the noise multiplier and the fit's
wall seconds (on a shared machine: the load is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from augment_bench import macro_f1, read_tweets, t_interval  # noqa: E402

from learnloop.families import get_family  # noqa: E402

LABELS = ["negative", "neutral", "positive"]
Rows = list[tuple[str, str]]


def split(tweets: list[dict[str, str]], seed: int, n_train: int, n_test: int) -> tuple[Rows, Rows]:
    seen: dict[str, str] = {}
    for t in tweets:
        seen.setdefault(" ".join(t["text"].split()), t["airline_sentiment"])
    rows = sorted(seen.items())
    random.Random(seed).shuffle(rows)
    return rows[:n_train], rows[n_train : n_train + n_test]


def arms(epsilons: list[float]) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, family, params) of each arm."""
    dp = [(f"dp-logreg eps={e:g}", "dp-logreg", {"target_epsilon": e}) for e in epsilons]
    return [
        ("tfidf-logreg", "tfidf-logreg", {}),
        *dp,
        ("dp-logreg no noise", "dp-logreg", {"target_epsilon": None}),
    ]


def run_seed(tweets: list[dict[str, str]], seed: int, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    train, test = split(tweets, seed, args.train, args.test)
    truth = np.array([label for _, label in test], dtype=object)
    found: dict[str, dict[str, Any]] = {}
    for name, key, params in arms(args.epsilons):
        family = get_family(key)
        if key == "dp-logreg":
            params = {**params, "reproducible_noise": True, **({"epochs": args.epochs} if args.epochs else {})}
        started = time.perf_counter()
        model = family.fit([t for t, _ in train], [lab for _, lab in train], label_set=LABELS, params=params, seed=seed)
        seconds = time.perf_counter() - started
        proba = model.predict_proba([t for t, _ in test])
        pred = np.array([model.labels[i] for i in proba.argmax(axis=1)], dtype=object)
        privacy = getattr(model, "privacy", None) or {}
        found[name] = {
            "accuracy": float(np.mean(pred == truth)),
            "macro_f1": macro_f1(truth, pred, LABELS),
            "seconds": seconds,
            "epsilon": privacy.get("epsilon"),
            "delta": privacy.get("delta"),
            "noise_multiplier": privacy.get("noise_multiplier"),
            "steps": privacy.get("steps"),
        }
        print(f"seed {seed} {name}: accuracy {found[name]['accuracy']:.3f} ({seconds:.1f}s)", flush=True)
    return found


def summarise(per_seed: list[dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for name in per_seed[0]:
        row: dict[str, Any] = {"arm": name}
        for metric in ("accuracy", "macro_f1"):
            values = [s[name][metric] for s in per_seed]
            row[metric] = t_interval(values)
            row[f"{metric}_vs_tfidf"] = t_interval([s[name][metric] - s["tfidf-logreg"][metric] for s in per_seed])
        row["seconds"] = float(np.mean([s[name]["seconds"] for s in per_seed]))
        row["epsilon"] = per_seed[0][name]["epsilon"]
        row["delta"] = per_seed[0][name]["delta"]
        row["noise_multiplier"] = per_seed[0][name]["noise_multiplier"]
        rows.append(row)
    return rows


def fmt(interval: tuple[float, float, float]) -> str:
    mean, low, high = interval
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train", type=int, default=8000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--epsilons", type=lambda s: [float(x) for x in s.split(",")], default=[1.0, 3.0, 8.0])
    parser.add_argument("--epochs", type=int, default=None, help="dp-logreg epochs (default: the family's)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    tweets = read_tweets(args.data_dir)
    load = os.getloadavg()
    per_seed = [run_seed(tweets, seed, args) for seed in range(args.seeds)]
    rows = summarise(per_seed)
    print(
        f"\nairline tweets, 3 classes: {args.train} train / {args.test} held out, {args.seeds} seeds; "
        f"load average at start {load[0]:.1f}, at end {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)"
    )
    print(f"{'arm':<22} {'accuracy (95% t)':<24} {'vs tfidf':<26} {'macro-F1':<24} eps     sigma   fit s")
    for r in rows:
        eps = "-" if r["epsilon"] is None else f"{r['epsilon']:.2f}"
        sigma = "-" if r["noise_multiplier"] is None else f"{r['noise_multiplier']:.2f}"
        print(
            f"{r['arm']:<22} {fmt(r['accuracy']):<24} {fmt(r['accuracy_vs_tfidf']):<26} "
            f"{fmt(r['macro_f1']):<24} {eps:<7} {sigma:<7} {r['seconds']:.1f}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": {**vars(args), "data_dir": str(args.data_dir), "json": None},
                    "per_seed": per_seed,
                    "summary": rows,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
