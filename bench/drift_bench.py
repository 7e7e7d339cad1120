"""How long each drift detector's check takes as the window grows (1k, 10k, 100k texts).

Run from the repository root with the project's virtual environment::

    .venv/bin/python bench/drift_bench.py [--repeat 3] [--seed 0]

Data: the UCI sentences learnloop ships. A tfidf-logreg model is trained on 1,600 Yelp and
Amazon sentences; the reference is 10,000 sentences drawn with replacement from those two
domains, with the model's probabilities and vocabulary; windows are drawn with replacement from
all three domains (IMDB included, so the text detectors see a shift). Every check gets the
model's feature map.
Probabilities are computed before the clock starts: the figures are the detectors' own cost.
Prints figures only (median of ``--repeat`` runs); it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from learnloop.datasets import read_labelled, uci_sentiment_path
from learnloop.drift import DETECTORS, ReferenceData, Window, check_all, fit_all
from learnloop.families import get_family
from learnloop.families.tfidf_logreg import TfidfLogRegPredictor

WINDOW_SIZES = (1_000, 10_000, 100_000)
REFERENCE_SIZE = 10_000


def sentences(domain: str) -> list[tuple[str, str]]:
    data = read_labelled(uci_sentiment_path(domain), text_column="0", label_column="1", header=False)
    return list(zip(data.texts, data.labels, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    in_domain = sentences("yelp") + sentences("amazon_cells")
    everything = in_domain + sentences("imdb")
    order = rng.permutation(len(in_domain))
    train = [in_domain[i] for i in order[:1_600]]
    predictor = get_family("tfidf-logreg").fit(
        [t for t, _ in train], [lab for _, lab in train], label_set=["0", "1"], params={}, seed=args.seed
    )
    if not isinstance(predictor, TfidfLogRegPredictor):
        raise SystemExit("expected a tfidf-logreg predictor")
    vectorizer = predictor.vectorizer

    def draw(pool: list[tuple[str, str]], n: int) -> tuple[list[str], np.ndarray]:
        texts = [pool[i][0] for i in rng.integers(0, len(pool), n)]
        return texts, predictor.predict_proba(texts)

    ref_texts, ref_proba = draw(in_domain, REFERENCE_SIZE)
    reference = ReferenceData(
        ref_texts,
        ref_proba,
        predictor.labels,
        vocabulary=frozenset(vectorizer.vocabulary_),
    )
    fit_ms: dict[str, float] = {}
    summaries: dict[str, dict[str, Any]] = {}
    for key, detector in DETECTORS.items():
        start = time.perf_counter()
        summaries[key] = detector.fit(reference)
        fit_ms[key] = (time.perf_counter() - start) * 1e3
    windows = {n: Window(*draw(everything, n), predictor.labels) for n in WINDOW_SIZES}

    def timed(run: Callable[[], object]) -> float:
        samples = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            run()
            samples.append((time.perf_counter() - start) * 1e3)
        return statistics.median(samples)

    print(f"drift checks against a reference of {REFERENCE_SIZE:,} texts; median of {args.repeat} runs, milliseconds")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    header = f"{'detector':<14}{'summary KB':>12}{'fit 10k':>9}" + "".join(
        f"{f'check {n:,}':>15}" for n in WINDOW_SIZES
    )
    print(header)
    for key, detector in DETECTORS.items():
        cells = [
            timed(partial(detector.check, summaries[key], windows[n], features=vectorizer.transform))
            for n in WINDOW_SIZES
        ]
        size_kb = len(json.dumps(summaries[key])) / 1e3
        print(f"{key:<14}{size_kb:>12.1f}{fit_ms[key]:>9.0f}" + "".join(f"{c:>15.0f}" for c in cells))
    totals = [timed(partial(check_all, summaries, windows[n], features=vectorizer.transform)) for n in WINDOW_SIZES]
    print(f"{'all (check_all)':<35}" + "".join(f"{c:>15.0f}" for c in totals))
    start = time.perf_counter()
    fit_all(reference)
    print(f"fit_all on {REFERENCE_SIZE:,} texts: {(time.perf_counter() - start) * 1e3:.0f} ms")
    for n in WINDOW_SIZES:
        verdicts = ", ".join(f"{r.detector}={r.status}" for r in check_all(summaries, windows[n], vectorizer.transform))
        print(f"window {n:,}: {verdicts}")


if __name__ == "__main__":
    main()
