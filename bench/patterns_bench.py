"""How long error-pattern analysis takes on 10,000 disagreements from real data, and what it finds.

Run from the repository root with the project's virtual environment::

    .venv/bin/python bench/patterns_bench.py [--disagreements 10000] [--repeat 3] [--data-dir DIR]

Data (the shared folder, ``../shared/datasets``):

* **SST-2** (movie-review sentences): a deliberately weak tfidf-logreg model is trained on the
  first 1,000 sentences of the training file and answers the rest; every answer it got wrong is
  a disagreement (the user's correction is the true label), every answer it got right a
  confirmation. The first ``--disagreements`` wrong answers and three times as many right ones
  are the judged answers analysed.
* **Airline tweets** (three classes, the airline as feedback metadata): the same with a model
  trained on the first 2,000 tweets in time order and judged on the rest, to show the slices by
  metadata field.

The clock covers ``analyse`` only (clustering with the choice of k, the regions' tests, the
slices' tests), the judged rows built beforehand. Prints figures and the patterns found (median
of ``--repeat`` runs); it asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from learnloop.monitoring.patterns import Analysis, Judged, analyse  # noqa: E402
from learnloop.monitoring.patterns.clusters import cluster_texts  # noqa: E402


def timed_runs(rows: list[Judged], repeat: int, seed: int) -> tuple[list[Analysis], str]:
    """``analyse`` ``repeat`` times, and the clustering alone (the corrected texts' TF-IDF, SVD,
    the choice of k and the final fit) as often: wall and CPU seconds, medians."""
    from threadpoolctl import threadpool_limits

    wrong = [r.text for r in rows if r.wrong]
    walls, cpus, runs = [], [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        with threadpool_limits(limits=1):  # as analyse runs it
            cluster_texts(wrong, seed=seed)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    whole = []
    for _ in range(repeat):
        cpu = time.process_time()
        runs.append(analyse(rows, seed=seed))
        whole.append(time.process_time() - cpu)
    line = (
        f"clustering {len(wrong):,} corrected texts: median {statistics.median(walls):.2f} s wall, "
        f"{statistics.median(cpus):.2f} s CPU; whole analysis (clusters, regions, slices): median "
        f"{statistics.median([r.seconds for r in runs]):.2f} s wall, {statistics.median(whole):.2f} s CPU "
        f"({repeat} runs each)"
    )
    return runs, line


def _readers() -> Any:
    """bench/datasets.py, loaded by path (on sys.path it would shadow Hugging Face's ``datasets``)."""
    spec = importlib.util.spec_from_file_location("bench_datasets", ROOT / "bench" / "datasets.py")
    assert spec is not None and spec.loader is not None
    readers = importlib.util.module_from_spec(spec)
    sys.modules["bench_datasets"] = readers
    spec.loader.exec_module(readers)
    return readers


def default_data_dir() -> Path:
    for up in (ROOT, ROOT.parent, ROOT.parent.parent):  # a worktree sits one level deeper
        if (up / "shared" / "datasets" / "README.md").is_file():
            return up / "shared" / "datasets"
    return ROOT.parent / "shared" / "datasets"


def judged_by_weak_model(
    train: list[tuple[str, str]], rest: list[tuple[str, str, dict[str, Any]]], wrong_wanted: int, seed: int
) -> list[Judged]:
    """A weak model's answers on ``rest``, judged by the true labels: up to ``wrong_wanted``
    disagreements and three times as many confirmations."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(min_df=2), LogisticRegression(max_iter=1000, random_state=seed))
    model.fit([t for t, _ in train], [y for _, y in train])
    predicted = model.predict([t for t, _, _ in rest])
    wrong: list[Judged] = []
    right: list[Judged] = []
    for i, ((text, truth, metadata), answer) in enumerate(zip(rest, predicted, strict=True)):
        row = Judged(f"p{i}", text, answer != truth, str(answer), truth, 1, metadata)
        (wrong if row.wrong else right).append(row)
    return wrong[:wrong_wanted] + right[: 3 * wrong_wanted]


def show(name: str, runs: list[Analysis], timing: str) -> None:
    a = runs[-1]
    print(f"\n== {name}: {a.judged:,} judged answers, {a.disagreements:,} disagreements")
    print(timing)
    tried = ", ".join(f"{k}:{s:.3f}" for k, s in sorted(a.silhouettes.items()))
    print(f"k = {a.k} by silhouette {a.silhouette:.3f} (tried {tried})" if a.k else a.note)
    for p in a.patterns:
        r = p.region
        flag = "*" if r.significant else " "
        pairs = "; ".join(f"{pair} x{n}" for pair, n in p.pairs)
        print(
            f" {flag} {p.size:>5} corrected | region {r.error_rate:.0%} wrong (n={r.n}) vs {r.rest_rate:.0%} rest, "
            f"q={r.q_value:.2g} | {p.title} | {pairs}"
        )
        print(f"        e.g. {p.examples[0].text[:110]!r}" if p.examples else "")
    print(f"significant slices (Fisher exact one-sided, BH q<0.05) of {a.slices_tested} tested: {len(a.slices)}")
    for s in a.slices[:12]:
        t = s.test
        print(
            f"   {s.key:<36} n={t.n:>5} {t.error_rate:.0%} wrong vs {t.rest_rate:.0%} (n={t.rest_n}), q={t.q_value:.2g}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--disagreements", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    args = parser.parse_args()
    readers = _readers()
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"{platform.machine()}, {os.cpu_count()} CPUs{load}, Python {platform.python_version()}")

    sst2 = readers.read_sst2(args.data_dir / "sst2" / "train.tsv.gz")
    rows = judged_by_weak_model(sst2[:1000], [(t, y, {}) for t, y in sst2[1000:]], args.disagreements, args.seed)
    runs, timing = timed_runs(rows, args.repeat, args.seed)
    show(f"SST-2, weak model on 1,000 sentences, {args.disagreements:,} disagreements wanted", runs, timing)

    tweets = sorted(readers.read_tweets(args.data_dir / "twitter_us_airline" / "Tweets.csv.gz"),
                    key=lambda t: (t.created, t.tweet_id))  # fmt: skip
    train = [(t.text, t.sentiment) for t in tweets[:2000]]
    rest = [(t.text, t.sentiment, {"airline": t.airline}) for t in tweets[2000:]]
    rows = judged_by_weak_model(train, rest, args.disagreements, args.seed)
    runs, timing = timed_runs(rows, args.repeat, args.seed)
    show("airline tweets (3 classes), weak model on the first 2,000 tweets", runs, timing)


if __name__ == "__main__":
    main()
