"""Does augmenting thin classes help? The snapshot's synthetic rows (``augment_min_examples``,
``curation.augment``) against none, on real tweets, over 3 seeds, scored on held-out tweets.

Run from the repository root::

    .venv/bin/python bench/augment_bench.py                  # ../shared/datasets
    .venv/bin/python bench/augment_bench.py --data-dir PATH --seeds 3 --json out.json

Data: Kaggle's US airline tweets (``twitter_us_airline/Tweets.csv.gz``, 14,640 tweets). Two tasks:

* ``sentiment-thin-positive``: negative / neutral / positive, with the *positive* class cut to
  ``--thin`` (default 40) training tweets (the others: 1,500 negative, 1,000 neutral), scored
  on 500 held-out tweets per class;
* ``negative-reason``: the 10 reasons of the negative tweets, whose own thin classes are
  "Damaged Luggage" (74 tweets in all) and "longlines" (178); a stratified 70/30 split.

Per seed (the split's, the subsample's and the augmentation's), the tfidf-logreg family is
fitted on the snapshot ``build_snapshot`` makes from the training rows (held-out texts as the
golden set, so near copies of them are dropped from training in both arms), without and with
``augment_min_examples``, and scored on the held-out tweets: macro-F1 and the thin class's
recall, with a paired bootstrap 95% interval (1,000 resamples of the held-out tweets) of the
difference per seed, and the mean difference over seeds with a t interval (df = seeds - 1).
A control arm, ``duplicate``, copies the thin class's real rows (round robin) up to the same
count instead: what the synthetic rows add beyond re-weighting the class shows as
``eda - duplicate``. A reference arm, ``balanced``, fits without synthetic rows with the
family's ``class_weight=balanced``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from learnloop.families import get_family  # noqa: E402
from learnloop.policy import Policy  # noqa: E402
from learnloop.tasks.classification import build_snapshot  # noqa: E402

Rows = list[tuple[str, str]]
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
RESAMPLES = 1000


def read_tweets(data_dir: Path) -> list[dict[str, str]]:
    with gzip.open(data_dir / "twitter_us_airline" / "Tweets.csv.gz", "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def sentiment_thin(tweets: list[dict[str, str]], seed: int, thin: int) -> tuple[Rows, Rows, str]:
    rng = random.Random(seed)
    by: dict[str, list[str]] = {}
    for t in tweets:
        by.setdefault(t["airline_sentiment"], []).append(" ".join(t["text"].split()))
    train: Rows = []
    test: Rows = []
    for label, n_train in (("negative", 1500), ("neutral", 1000), ("positive", thin)):
        texts = sorted(set(by[label]))
        rng.shuffle(texts)
        test += [(x, label) for x in texts[:500]]
        train += [(x, label) for x in texts[500 : 500 + n_train]]
    rng.shuffle(train)
    return train, test, "positive"


def negative_reason(tweets: list[dict[str, str]], seed: int, thin: int) -> tuple[Rows, Rows, str]:
    rng = random.Random(seed)
    by: dict[str, list[str]] = {}
    for t in tweets:
        if t["negativereason"]:
            by.setdefault(t["negativereason"], []).append(" ".join(t["text"].split()))
    train: Rows = []
    test: Rows = []
    for label in sorted(by):
        texts = sorted(set(by[label]))
        rng.shuffle(texts)
        cut = round(0.3 * len(texts))
        test += [(x, label) for x in texts[:cut]]
        train += [(x, label) for x in texts[cut:]]
    rng.shuffle(train)
    return train, test, "Damaged Luggage"


def duplicated(train: Rows, min_examples: int) -> Rows:
    """The control arm: each class under ``min_examples`` rows topped up with copies of its own
    rows (round robin, at most 10 per row, as the augmentation), no text changed."""
    by: dict[str, Rows] = {}
    for text, label in train:
        by.setdefault(label, []).append((text, label))
    extra = [rows[k % len(rows)] for rows in by.values() for k in range(min(min_examples - len(rows), 10 * len(rows)))]
    return [*train, *extra]


def macro_f1(truth: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> float:
    scores = []
    for label in labels:
        tp = np.sum((pred == label) & (truth == label))
        fp = np.sum((pred == label) & (truth != label))
        fn = np.sum((pred != label) & (truth == label))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def recall(truth: np.ndarray, pred: np.ndarray, label: str) -> float:
    mask = truth == label
    return float(np.mean(pred[mask] == label)) if mask.any() else float("nan")


def paired_interval(
    truth: np.ndarray, a: np.ndarray, b: np.ndarray, metric: Any, seed: int
) -> tuple[float, float, float]:
    """(b - a, low, high): the difference of ``metric`` and its paired percentile bootstrap 95%
    interval over the held-out rows."""
    rng = np.random.default_rng(seed)
    n = len(truth)
    diffs = []
    for _ in range(RESAMPLES):
        i = rng.integers(0, n, n)
        diffs.append(metric(truth[i], b[i]) - metric(truth[i], a[i]))
    low, high = np.percentile(diffs, [2.5, 97.5])
    return metric(truth, b) - metric(truth, a), float(low), float(high)


def t_interval(values: Sequence[float]) -> tuple[float, float, float]:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = T_975.get(len(values) - 1, 1.96) * statistics.stdev(values) / len(values) ** 0.5
    return mean, mean - half, mean + half


def fit_predict(
    train: Rows, test: Rows, labels: list[str], policy: Policy, seed: int, params: dict[str, Any] | None = None
) -> tuple[np.ndarray, int]:
    snapshot = build_snapshot(
        bootstrap=train,
        feedback=[],
        golden_texts=[t for t, _ in test],
        champion_cutoff=None,
        cutoff=None,
        policy=policy,
    )
    family = get_family("tfidf-logreg")
    model = family.fit(
        [ex.text for ex in snapshot.train],
        [ex.label for ex in snapshot.train],
        label_set=labels,
        params=params or {},
        seed=seed,
    )
    proba = np.asarray(model.predict_proba([t for t, _ in test]))
    return np.asarray(labels)[proba.argmax(axis=1)], int(snapshot.counts.get("train_synthetic", 0))


def run_task(name: str, make: Any, tweets: list[dict[str, str]], args: argparse.Namespace) -> dict[str, Any]:
    per_seed = []
    for seed in range(args.seeds):
        train, test, thin = make(tweets, seed, args.thin)
        labels = sorted({label for _, label in train})
        truth = np.asarray([label for _, label in test])
        base, _ = fit_predict(train, test, labels, Policy(), seed)
        policy = Policy.of(augment_min_examples=args.min_examples, augment_method=args.method, augment_seed=seed)
        aug, synthetic = fit_predict(train, test, labels, policy, seed)
        dup, _ = fit_predict(duplicated(train, args.min_examples), test, labels, Policy(), seed)
        balanced, _ = fit_predict(train, test, labels, Policy(), seed, {"class_weight": "balanced"})

        def thin_recall(t: np.ndarray, p: np.ndarray, label: str = thin) -> float:
            return recall(t, p, label)

        def f1_of(t: np.ndarray, p: np.ndarray, labels: list[str] = labels) -> float:
            return macro_f1(t, p, labels)

        f1 = paired_interval(truth, base, aug, f1_of, seed)
        rc = paired_interval(truth, base, aug, thin_recall, seed)
        f1_dup = paired_interval(truth, dup, aug, f1_of, seed)
        rc_dup = paired_interval(truth, dup, aug, thin_recall, seed)
        row = {
            "seed": seed,
            "train": len(train),
            "test": len(test),
            "thin_class": thin,
            "thin_train": sum(1 for _, label in train if label == thin),
            "thin_test": int(np.sum(truth == thin)),
            "synthetic": synthetic,
            "macro_f1": {
                "without": macro_f1(truth, base, labels),
                "duplicate": macro_f1(truth, dup, labels),
                "with": macro_f1(truth, aug, labels),
                "balanced": macro_f1(truth, balanced, labels),
            },
            "thin_recall": {
                "without": recall(truth, base, thin),
                "duplicate": recall(truth, dup, thin),
                "with": recall(truth, aug, thin),
                "balanced": recall(truth, balanced, thin),
            },
            "macro_f1_diff": f1,
            "thin_recall_diff": rc,
            "macro_f1_diff_vs_duplicate": f1_dup,
            "thin_recall_diff_vs_duplicate": rc_dup,
        }
        per_seed.append(row)
        print(
            f"{name} seed {seed}: {row['train']} train ({row['thin_train']} {thin}, +{synthetic} synthetic), "
            f"{row['test']} held out ({row['thin_test']} {thin}); macro-F1 {row['macro_f1']['without']:.3f} -> "
            f"{row['macro_f1']['with']:.3f} (diff {f1[0]:+.3f}, 95% CI {f1[1]:+.3f}..{f1[2]:+.3f}); "
            f"{thin} recall {row['thin_recall']['without']:.3f} -> {row['thin_recall']['with']:.3f} "
            f"(diff {rc[0]:+.3f}, 95% CI {rc[1]:+.3f}..{rc[2]:+.3f}); duplicating instead: macro-F1 "
            f"{row['macro_f1']['duplicate']:.3f}, {thin} recall {row['thin_recall']['duplicate']:.3f} "
            f"(eda - duplicate: F1 {f1_dup[0]:+.3f}, 95% CI {f1_dup[1]:+.3f}..{f1_dup[2]:+.3f}; "
            f"recall {rc_dup[0]:+.3f}, 95% CI {rc_dup[1]:+.3f}..{rc_dup[2]:+.3f}); class_weight=balanced "
            f"without synthetic rows: macro-F1 {row['macro_f1']['balanced']:.3f}, {thin} recall "
            f"{row['thin_recall']['balanced']:.3f}",
            flush=True,
        )
    summary = {
        "macro_f1_diff": t_interval([r["macro_f1_diff"][0] for r in per_seed]),
        "thin_recall_diff": t_interval([r["thin_recall_diff"][0] for r in per_seed]),
        "macro_f1_diff_vs_duplicate": t_interval([r["macro_f1_diff_vs_duplicate"][0] for r in per_seed]),
        "thin_recall_diff_vs_duplicate": t_interval([r["thin_recall_diff_vs_duplicate"][0] for r in per_seed]),
    }
    for key, (mean, low, high) in summary.items():
        print(f"{name}: mean {key} over {args.seeds} seeds {mean:+.3f} (t 95% CI {low:+.3f}..{high:+.3f})")
    return {"per_seed": per_seed, "summary": summary}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--thin", type=int, default=40, help="positive training tweets in sentiment-thin-positive")
    parser.add_argument("--min-examples", type=int, default=200, help="augment_min_examples")
    parser.add_argument("--method", default="eda")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    tweets = read_tweets(args.data_dir)
    results = {
        "settings": {k: str(v) for k, v in vars(args).items()},
        "sentiment-thin-positive": run_task("sentiment-thin-positive", sentiment_thin, tweets, args),
        "negative-reason": run_task("negative-reason", negative_reason, tweets, args),
    }
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
