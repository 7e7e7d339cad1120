"""Fairness gaps on real data with a real group attribute, and what computing them costs.

Run from the repository root with the project's virtual environment::

    .venv/bin/python bench/fairness_bench.py [--data ../shared/datasets] [--repeat 3] [--seed 0]

Two data sets from the shared folder (see its README):

* **Twitter US airline sentiment**, three classes, group = the ``airline`` column. Tweets in
  time order; version 1 (tfidf-logreg) learns the oldest 40%, version 2 the oldest 70%; both
  are judged on the newest 30% (a time split, never the training rows).
* **Amazon multi-domain reviews** (Blitzer et al.), binary, group = the product category.
  Version 1 learns 1,500 books and 1,500 dvd reviews only; version 2 also 1,500 electronics and
  1,500 kitchen reviews; both are judged on the other 500 reviews of every category.

For each: per group accuracy, the gaps (demographic parity and equal opportunity differences,
per label) of version 2 with 95% percentile bootstrap intervals (1,000 resamples), and the
gate's paired comparison (version 2's largest gap minus version 1's, 90% interval) on the same
rows. Timing: ``fairness_report`` and ``compare_largest_gap`` at 1,000 resamples, on the
judged rows and on 10,000 and 50,000 rows drawn from them with replacement (median of
``--repeat``); and ``GET /fairness``'s service call on a SQLite home holding 2,000 labelled
answers to tweets with their airline as metadata. Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT / "src"))

from learnloop.evaluation.fairness import FieldReport, compare_largest_gap, fairness_report  # noqa: E402
from learnloop.families import get_family  # noqa: E402

Rows = list[tuple[str, str, str]]  # text, label, group


def bench_datasets() -> Any:
    # bench/datasets.py, loaded by path: on sys.path it would shadow Hugging Face's ``datasets``
    spec = importlib.util.spec_from_file_location("bench_datasets", ROOT / "bench" / "datasets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_datasets"] = module
    spec.loader.exec_module(module)
    return module


def airline(data_dir: Path, readers: Any) -> tuple[Rows, Rows, Rows, list[str]]:
    tweets = sorted(
        readers.read_tweets(data_dir / "twitter_us_airline" / "Tweets.csv.gz"), key=lambda t: (t.created, t.tweet_id)
    )
    rows = [(t.text, t.sentiment, t.airline) for t in tweets]
    a, b = int(0.4 * len(rows)), int(0.7 * len(rows))
    return rows[:a], rows[:b], rows[b:], ["negative", "neutral", "positive"]


def amazon(data_dir: Path, readers: Any, seed: int) -> tuple[Rows, Rows, Rows, list[str]]:
    train: dict[str, Rows] = {}
    test: Rows = []
    for name in readers.AMAZON_CATEGORIES:
        rows = [(text, label, name) for text, label in readers.read_amazon(data_dir, readers.AMAZON_CATEGORIES[name])]
        random.Random(seed).shuffle(rows)
        train[name], test = rows[:1_500], test + rows[1_500:]
    first = train["books"] + train["dvd"]
    return first, first + train["electronics"] + train["kitchen"], test, ["0", "1"]


def fit_predict(train: Rows, test: Rows, labels: list[str], seed: int) -> list[str]:
    predictor = get_family("tfidf-logreg").fit(
        [t for t, _, _ in train], [lab for _, lab, _ in train], label_set=labels, params={}, seed=seed
    )
    proba = predictor.predict_proba([t for t, _, _ in test])
    return [predictor.labels[int(row.argmax())] for row in proba]


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:5.1f}%"


def show(report: FieldReport) -> None:
    print(f"  groups ({report.n} judged rows; min {report.min_n} rows for an interval):")
    for g in report.groups:
        a = g.accuracy
        print(f"    {g.group:<16} n={g.n:>5}  accuracy {pct(a.value)} [{pct(a.low)}, {pct(a.high)}]")
    print("  gaps of version 2 (95% bootstrap interval):")
    for gap in report.gaps:
        print(
            f"    {gap.metric:<18} {gap.label:<9} {pct(gap.value)} [{pct(gap.low)}, {pct(gap.high)}]"
            f"  highest {gap.highest}, lowest {gap.lowest}"
        )


def timed(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def scaled(
    n: int, truth: Sequence[str], v1: Sequence[str], v2: Sequence[str], groups: Sequence[str], seed: int
) -> tuple[list[str], ...]:
    rng = random.Random(seed)
    idx = [rng.randrange(len(truth)) for _ in range(n)]
    return tuple([seq[i] for i in idx] for seq in (truth, v1, v2, groups))


def run(name: str, field: str, data: tuple[Rows, Rows, Rows, list[str]], repeat: int, seed: int) -> None:
    first, second, test, labels = data
    print(
        f"\n== {name}: group = {field}; version 1 trained on {len(first)}, "
        f"version 2 on {len(second)}, judged on {len(test)}"
    )
    truth = [lab for _, lab, _ in test]
    groups = [g for _, _, g in test]
    v1, v2 = fit_predict(first, test, labels, seed), fit_predict(second, test, labels, seed)
    for version, pred in (("1", v1), ("2", v2)):
        print(f"  version {version} accuracy {pct(sum(t == p for t, p in zip(truth, pred, strict=True)) / len(truth))}")
    show(fairness_report(field, truth, v2, groups, labels, seed=seed))
    c = compare_largest_gap(field, truth, v1, v2, groups, labels, seed=seed)
    print(
        f"  gate, paired on the same rows: largest gap {pct(c.champion)} (v1) -> {pct(c.candidate)} (v2), "
        f"difference {pct(c.difference)}, 90% CI [{pct(c.low)}, {pct(c.high)}]"
    )
    print("  time at 1,000 resamples (median of", repeat, "runs):")
    for n in (len(truth), 10_000, 50_000):
        t, a, b, g = (truth, v1, v2, groups) if n == len(truth) else scaled(n, truth, v1, v2, groups, seed)
        report = timed(partial(fairness_report, field, t, b, g, labels, seed=seed), repeat)
        paired = timed(partial(compare_largest_gap, field, t, a, b, g, labels, seed=seed), repeat)
        print(f"    {n:>6} rows: report {report:6.3f} s, paired gate comparison {paired:6.3f} s")


def through_the_service(data_dir: Path, readers: Any, repeat: int) -> None:
    """What ``GET /fairness`` costs: a model trained on the oldest 40% of the tweets answers the
    newest 2,000 with their airline as metadata, every answer is labelled, and the report (read
    from SQLite, one version, 1,000 resamples) is timed."""
    import tempfile

    from learnloop.config import Settings
    from learnloop.domain import FeedbackInput
    from learnloop.models import NewModel, RowsSource
    from learnloop.services import build_services

    first, _, test, _ = airline(data_dir, readers)
    newest = test[-2_000:]
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(Settings(home=Path(tmp), isolate_training=False))
        try:
            policy = {"retrain_every": 1_000_000_000, "fairness_fields": "airline"}
            rows = [(t, lab) for t, lab, _ in first]
            services.creation.create(NewModel("tweets", policy=policy), RowsSource(rows, name="tweets.csv"), actor="b")
            answers = [
                answer
                for i in range(0, len(newest), 1_000)
                for answer in services.predictions.predict_many(
                    "tweets",
                    [t for t, _, _ in newest[i : i + 1_000]],
                    metadata=[{"airline": g} for _, _, g in newest[i : i + 1_000]],
                )
            ]
            services.ingest.flush()
            items = [
                FeedbackInput(prediction_id=a.prediction_id, label=lab)
                for a, (_, lab, _) in zip(answers, newest, strict=True)
            ]
            for i in range(0, len(items), 500):
                services.feedback.record_sync("tweets", items[i : i + 500])
            # A report is kept under what it read: each cold run asks for one more resample, so
            # none is served from the cache; the warm run is the page drawn again.
            resamples = iter(range(1_000, 1_000 + repeat))
            seconds = timed(lambda: services.fairness.report("tweets", resamples=next(resamples)), repeat)
            report = services.fairness.report("tweets")
            warm = timed(partial(services.fairness.report, "tweets"), repeat)
        finally:
            services.close()
    [version] = report.versions
    largest = version.fields[0].largest
    print(
        f"\n== through the service (GET /fairness): {report.labelled} labelled answers, "
        f"{len(version.fields[0].groups)} groups"
    )
    if largest is not None:
        print(
            f"  largest gap: {largest.metric} of {largest.label} {pct(largest.value)} "
            f"[{pct(largest.low)}, {pct(largest.high)}]"
        )
    print(f"  report from the database: {seconds:.3f} s (median of {repeat}); asked again (cached): {warm:.4f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    readers = bench_datasets()
    data_dir = args.data or readers.default_data_dir()
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}")
    run("Twitter US airline sentiment", "airline", airline(data_dir, readers), args.repeat, args.seed)
    run("Amazon multi-domain reviews", "category", amazon(data_dir, readers, args.seed), args.repeat, args.seed)
    through_the_service(data_dir, readers, args.repeat)


if __name__ == "__main__":
    main()
