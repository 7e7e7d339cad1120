"""How long explaining one answer takes, per classifier family, on real data.

Run from the repository root::

    .venv/bin/python bench/explain_bench.py                          # SST-2 and the airline tweets
    .venv/bin/python bench/explain_bench.py --data ../shared/datasets --train 4000 --texts 300

Data (the shared folder, read by ``bench/datasets.py``): ``sst2`` (a version trained on the
first ``--train`` sentences of GLUE SST-2's training set, explaining its dev sentences, short
movie-review phrases) and ``airline`` (trained on the first ``--train`` binary US-airline tweets
in time order, explaining the next ``--texts``: longer, noisier text). Per family and data set:
the version is fitted once, then each of ``--texts`` held-out texts is explained once
(``families.explanation.explain``: exact contributions for ``tfidf-logreg`` and
``incremental``, leave-one-word-out occlusion for ``embedding-logreg``, whose texts the
encoder's cache has not seen) and timed alone; the table gives p50, p99 and mean milliseconds,
the words per text, the same percentiles of the thread's CPU time (what the work costs, apart
from time spent waiting for a core on a shared machine), and ``predict_one`` on the same texts
for scale. The linear families also
check that every explanation's contributions add up to the decision function (max abs error).
One torch thread, one BLAS thread: what one serving worker gets.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# bench/ (the script's folder, first on sys.path) holds a datasets.py that would shadow Hugging
# Face's ``datasets``, which sentence-transformers imports: load it under another name instead
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT / "src"))
_spec = importlib.util.spec_from_file_location("bench_datasets", ROOT / "bench" / "datasets.py")
assert _spec is not None and _spec.loader is not None
bench_datasets = importlib.util.module_from_spec(_spec)
sys.modules["bench_datasets"] = bench_datasets  # dataclasses look their module up there
_spec.loader.exec_module(bench_datasets)

from learnloop.families import FAMILIES  # noqa: E402
from learnloop.families.explanation import explain  # noqa: E402

Rows = list[tuple[str, str]]
FAMILY_KEYS = ("tfidf-logreg", "incremental", "embedding-logreg")


def data_sets(folder: Path, train: int, texts: int) -> dict[str, tuple[Rows, list[str]]]:
    sst2_train = bench_datasets.read_sst2(folder / "sst2" / "train.tsv.gz")
    sst2_dev = bench_datasets.read_sst2(folder / "sst2" / "dev.tsv")
    tweets = bench_datasets.twitter_binary(bench_datasets.read_tweets(folder / "twitter_us_airline" / "Tweets.csv.gz"))
    return {
        "sst2": (sst2_train[:train], [t for t, _ in sst2_dev[:texts]]),
        "airline": (tweets[:train], [t for t, _ in tweets[train : train + texts]]),
    }


def _quantile(values: list[float], q: float) -> float:
    return float(np.quantile(np.asarray(values), q))


def _decision_error(predictor: Any, text: str, found: Any) -> float:
    raw = np.atleast_1d(predictor.classifier.decision_function(predictor.features([text]))[0])
    classes = [str(c) for c in predictor.classifier.classes_]
    decision = (
        {classes[0]: -float(raw[0]), classes[1]: float(raw[0])}
        if len(classes) == 2
        else dict(zip(classes, map(float, raw), strict=True))
    )
    return max(
        abs(found.intercept[label] + sum(t.contributions[label] for t in found.terms) - value)
        for label, value in decision.items()
    )


def measure(family_key: str, rows: Rows, texts: list[str]) -> dict[str, Any]:
    family = FAMILIES[family_key]
    started = time.perf_counter()
    predictor = family.fit([t for t, _ in rows], [lab for _, lab in rows], label_set=["0", "1"], params={})
    fit_s = time.perf_counter() - started
    explain(predictor, "warm up the model's first call")
    predict_ms, explain_ms, explain_cpu_ms, errors, methods = [], [], [], [], set()
    for text in texts:
        t0 = time.perf_counter()
        predictor.predict_one(text)
        t1 = time.perf_counter()
        c1 = time.thread_time()
        found = explain(predictor, text)
        c2 = time.thread_time()
        t2 = time.perf_counter()
        predict_ms.append(1000 * (t1 - t0))
        explain_ms.append(1000 * (t2 - t1))
        explain_cpu_ms.append(1000 * (c2 - c1))
        methods.add(found.method)
        if found.method == "linear":
            errors.append(_decision_error(predictor, text, found))
    return {
        "family": family_key,
        "method": "/".join(sorted(methods)),
        "fit_s": fit_s,
        "texts": len(texts),
        "words_mean": statistics.fmean(len(t.split()) for t in texts),
        "explain_p50_ms": _quantile(explain_ms, 0.5),
        "explain_p99_ms": _quantile(explain_ms, 0.99),
        "explain_mean_ms": statistics.fmean(explain_ms),
        "explain_cpu_p50_ms": _quantile(explain_cpu_ms, 0.5),
        "explain_cpu_p99_ms": _quantile(explain_cpu_ms, 0.99),
        "predict_p50_ms": _quantile(predict_ms, 0.5),
        "max_abs_sum_error": max(errors) if errors else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=bench_datasets.default_data_dir(), help="shared datasets folder")
    parser.add_argument("--train", type=int, default=4000, help="training rows per data set")
    parser.add_argument("--texts", type=int, default=300, help="held-out texts explained per family and data set")
    parser.add_argument("--families", nargs="+", default=list(FAMILY_KEYS), choices=FAMILY_KEYS)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    results: list[dict[str, Any]] = []
    header = (
        f"{'data':8} {'family':17} {'method':9} {'texts':>5} {'words':>5} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'mean ms':>8} {'cpu p50':>8} {'cpu p99':>8} {'predict':>8} {'sum err':>8}"
    )
    print(header)
    with threadpool_limits(limits=1):
        for name, (rows, texts) in data_sets(args.data, args.train, args.texts).items():
            for key in args.families:
                r = {"data": name, **measure(key, rows, texts)}
                results.append(r)
                err = "-" if r["max_abs_sum_error"] is None else f"{r['max_abs_sum_error']:.1e}"
                print(
                    f"{name:8} {key:17} {r['method']:9} {r['texts']:5d} {r['words_mean']:5.1f} "
                    f"{r['explain_p50_ms']:8.2f} {r['explain_p99_ms']:8.2f} {r['explain_mean_ms']:8.2f} "
                    f"{r['explain_cpu_p50_ms']:8.2f} {r['explain_cpu_p99_ms']:8.2f} "
                    f"{r['predict_p50_ms']:8.2f} {err:>8}",
                    flush=True,
                )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
