"""The two baselines a replay is measured against, on the same stream.

* **static**: the bootstrap model, never retrained (what a team has without a loop);
* **oracle**: the same family refitted every ``every`` items on the bootstrap data plus every
  true label seen so far, with no delay, no noise and no gate (the upper limit of the loop).

Both are fitted the way version 1 is (same family, parameters, training split and seed), so
the static baseline predicts exactly what version 1 serves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from learnloop.families import get_family
from learnloop.tasks.classification.fit import predict_labels

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Baseline:
    name: str
    predictions: list[str]
    fits: int


def static_baseline(
    family: str,
    params: dict[str, Any],
    label_set: Sequence[str],
    train: Sequence[tuple[str, str]],
    stream_texts: Sequence[str],
    *,
    seed: int = 0,
) -> Baseline:
    """Version 1 never retrained: the oracle's first fit, never refitted."""
    never = max(len(stream_texts), 1)
    oracle = oracle_baseline(family, params, label_set, train, stream_texts, (), every=never, seed=seed)
    return Baseline("static", oracle.predictions, oracle.fits)


def oracle_baseline(
    family: str,
    params: dict[str, Any],
    label_set: Sequence[str],
    train: Sequence[tuple[str, str]],
    stream_texts: Sequence[str],
    stream_labels: Sequence[str],
    *,
    every: int,
    feedback_weight: float = 1.0,
    seed: int = 0,
    progress: Progress | None = None,
) -> Baseline:
    """Prequential predictions of a model refitted every ``every`` items on all true labels so far
    (weighted like the loop's feedback, so it stays the upper limit of the same recipe)."""
    fam = get_family(family)
    texts = [t for t, _ in train]
    labels = [lab for _, lab in train]
    out: list[str] = []
    fits = 0
    n = len(stream_texts)
    for start in range(0, n, every):
        weights = None if feedback_weight == 1.0 else [1.0] * len(texts) + [feedback_weight] * start
        predictor = fam.fit(
            texts + list(stream_texts[:start]),
            labels + list(stream_labels[:start]),
            label_set=label_set,
            params=params,
            sample_weight=weights,
            seed=seed,
        )
        fits += 1
        out += predict_labels(predictor, list(stream_texts[start : start + every]), list(label_set))[0]
        if progress is not None:
            progress(min(start + every, n), n)
    return Baseline("oracle", out, fits)
