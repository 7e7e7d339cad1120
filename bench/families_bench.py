"""The classifier families side by side: fit and predict time and held-out accuracy, an
incremental update against a full fit, and the embedding family's cache.

Run from the repository root::

    .venv/bin/python bench/families_bench.py                     # the shipped UCI sentences
    .venv/bin/python bench/families_bench.py --sst2 4000         # and SST-2 (../shared/datasets)

Tasks: ``uci-sentiment`` (the three shipped UCI domains pooled, 3,000 sentences, binary),
``uci-domain`` (which site a sentence came from, 3 classes) and, with ``--sst2 N``, ``sst2``
(the first N training sentences of GLUE SST-2, scored on its 872 dev sentences). A seeded 80/20
split (SST-2: train/dev). Per family and task: the fit's seconds (the embedding family's with an
empty cache, then again with its vectors cached), ``predict_proba`` on the whole test set,
``predict_one`` per text (median, on texts the embedding cache has not seen) and accuracy.
Then the incremental family: a version fitted on the first 80% of the training rows updated with
the other 20% (``previous``) against a fit from scratch on all of them, and the embedding
vectors against sentence-transformers' own (max absolute difference). One torch thread.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# bench/ (the script's folder, first on sys.path) holds a datasets.py that would shadow Hugging
# Face's ``datasets``, which sentence-transformers imports
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT / "src"))

from learnloop.datasets.readers import read_labelled  # noqa: E402
from learnloop.datasets.shipped import UCI_DOMAINS, uci_sentiment_path  # noqa: E402
from learnloop.families import FAMILIES  # noqa: E402
from learnloop.families.base import Predictor  # noqa: E402

Rows = list[tuple[str, str]]
FAMILY_KEYS = ("tfidf-logreg", "incremental", "embedding-logreg")


def uci_tasks(seed: int) -> dict[str, tuple[Rows, Rows]]:
    sentiment: Rows = []
    domain: Rows = []
    for name in UCI_DOMAINS:
        data = read_labelled(uci_sentiment_path(name), text_column="0", label_column="1", header=False)
        sentiment += list(zip(data.texts, data.labels, strict=True))
        domain += [(text, name) for text in data.texts]
    return {"uci-sentiment": split(sentiment, seed), "uci-domain": split(domain, seed)}


def sst2_task(data_dir: Path | None, n: int) -> tuple[Rows, Rows]:
    import importlib.util

    # bench/datasets.py, loaded by path: on sys.path it would shadow Hugging Face's ``datasets``
    spec = importlib.util.spec_from_file_location("bench_datasets", ROOT / "bench" / "datasets.py")
    assert spec is not None and spec.loader is not None
    readers = importlib.util.module_from_spec(spec)
    sys.modules["bench_datasets"] = readers
    spec.loader.exec_module(readers)
    data_dir = data_dir or readers.default_data_dir()
    read_sst2 = readers.read_sst2
    return read_sst2(data_dir / "sst2" / "train.tsv.gz")[:n], read_sst2(data_dir / "sst2" / "dev.tsv")


def split(rows: Rows, seed: int) -> tuple[Rows, Rows]:
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    cut = int(0.8 * len(shuffled))
    return shuffled[:cut], shuffled[cut:]


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = work()
    return out, time.perf_counter() - started


def accuracy(predictor: Predictor, rows: Rows) -> float:
    proba = predictor.predict_proba([t for t, _ in rows])
    return float(np.mean([predictor.labels[i] == lab for i, (_, lab) in zip(proba.argmax(axis=1), rows, strict=True)]))


def fit(key: str, rows: Rows, previous: Predictor | None = None) -> Predictor:
    labels = sorted({lab for _, lab in rows})
    return FAMILIES[key].fit(
        [t for t, _ in rows], [lab for _, lab in rows], label_set=labels, params={}, seed=0, previous=previous
    )


def forget_vectors(key: str) -> None:
    encoder = getattr(FAMILIES[key], "encoder", None)
    if encoder is not None:
        encoder.forget()


def measure_family(key: str, train: Rows, test: Rows, one_texts: Sequence[str]) -> dict[str, Any]:
    forget_vectors(key)
    predictor, fit_s = timed(lambda: fit(key, train))
    _, refit_s = timed(lambda: fit(key, train))
    texts = [t for t, _ in test]
    forget_vectors(key)
    _, predict_s = timed(lambda: predictor.predict_proba(texts))
    forget_vectors(key)
    predictor.predict_one("warm up")
    one_ms = []
    for text in one_texts:
        started = time.perf_counter()
        predictor.predict_one(text)
        one_ms.append(1000 * (time.perf_counter() - started))
    return {
        "family": key,
        "fit_s": fit_s,
        "refit_s": refit_s,
        "predict_s": predict_s,
        "predict_per_text_ms": 1000 * predict_s / len(texts),
        "predict_one_median_ms": statistics.median(one_ms),
        "accuracy": accuracy(predictor, test),
    }


def measure_update(train: Rows, test: Rows) -> dict[str, Any]:
    cut = int(0.8 * len(train))
    first = fit("incremental", train[:cut])
    updated, update_s = timed(lambda: fit("incremental", train, previous=first))
    scratch, scratch_s = timed(lambda: fit("incremental", train))
    return {
        "new_examples": len(train) - cut,
        "update_s": update_s,
        "scratch_s": scratch_s,
        "accuracy_before": accuracy(first, test),
        "accuracy_updated": accuracy(updated, test),
        "accuracy_scratch": accuracy(scratch, test),
    }


def sentence_transformers_difference(texts: Sequence[str]) -> float | str:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        return f"not measured: {exc}"
    from learnloop.families.sentence_encoder import SentenceEncoder, model_dir

    reference = SentenceTransformer(str(model_dir()), device="cpu").encode(list(texts), batch_size=32)
    ours = SentenceEncoder().encode(texts)
    return float(np.abs(reference - ours).max())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sst2", type=int, default=0, help="also SST-2, with this many training sentences")
    parser.add_argument("--data", type=Path, help="the shared data folder (default: ../shared/datasets)")
    parser.add_argument("--families", nargs="+", default=list(FAMILY_KEYS), choices=FAMILY_KEYS)
    parser.add_argument("--one-texts", type=int, default=50, help="texts timed through predict_one")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    tasks = uci_tasks(args.seed)
    if args.sst2:
        tasks["sst2"] = sst2_task(args.data, args.sst2)
    results: dict[str, Any] = {"tasks": {}, "updates": {}}
    print(f"{'task':<14} {'family':<17} {'train':>6} {'test':>5} {'fit s':>7} {'refit s':>8} "
          f"{'pred ms/text':>12} {'one ms':>7} {'accuracy':>8}")  # fmt: skip
    for task, (train, test) in tasks.items():
        one_texts = [t for t, _ in test[: args.one_texts]]
        rows = []
        for key in args.families:
            row = measure_family(key, train, test, one_texts)
            rows.append(row)
            print(f"{task:<14} {key:<17} {len(train):>6} {len(test):>5} {row['fit_s']:>7.2f} {row['refit_s']:>8.2f} "
                  f"{row['predict_per_text_ms']:>12.3f} {row['predict_one_median_ms']:>7.2f} {row['accuracy']:>8.3f}",
                  flush=True)  # fmt: skip
        results["tasks"][task] = rows
    print("\nincremental: update with the last 20% of the training rows vs a fit from scratch on all")
    for task, (train, test) in tasks.items():
        if "incremental" not in args.families:
            break
        u = measure_update(train, test)
        results["updates"][task] = u
        print(f"{task:<14} {u['new_examples']:>5} new: update {u['update_s']:.3f}s, scratch {u['scratch_s']:.3f}s; "
              f"accuracy {u['accuracy_before']:.3f} -> updated {u['accuracy_updated']:.3f} "
              f"(scratch {u['accuracy_scratch']:.3f})")  # fmt: skip
    if "embedding-logreg" in args.families:
        diff = sentence_transformers_difference([t for t, _ in tasks["uci-sentiment"][1][:64]])
        results["sentence_transformers_max_abs_diff"] = diff
        print(f"\nembedding vectors vs sentence-transformers' encode (64 texts): max |difference| {diff}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
