"""A candidate's selection score: forward chaining over time-ordered training data. Each fold
fits the family on what came before a block and predicts the block; the score is the share
of the blocks' examples it got right (pooled over the folds), with each fold's own share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from learnloop.families import get_family

# Called after each fold with (fold index, pooled accuracy so far); may raise to stop (pruning).
FoldHook = Callable[[int, float], None]


@dataclass(frozen=True)
class SelectionData:
    """What candidates are scored on: examples in time order and the forward-chaining folds
    (indices into them) that judge a candidate, none of them the gate's evidence."""

    texts: list[str]
    labels: list[str]
    label_set: list[str]
    folds: list[tuple[list[int], list[int]]]  # (fit on, predict) per fold
    weights: list[float] | None = None  # per example; None: all 1

    @property
    def judged(self) -> int:
        return sum(len(evaluate) for _, evaluate in self.folds)


@dataclass(frozen=True)
class FoldScores:
    scores: list[float]  # accuracy on each fold's block
    correct: int
    judged: int

    @property
    def score(self) -> float:
        return self.correct / self.judged if self.judged else 0.0


def score_folds(
    family: str, params: Mapping[str, Any], data: SelectionData, *, seed: int = 0, after_fold: FoldHook | None = None
) -> FoldScores:
    """Fit ``family`` with ``params`` on each fold and score it on the fold's block. Each fit
    starts from scratch: a champion continued here would have trained on the blocks it judges."""
    fitter = get_family(family)
    scores: list[float] = []
    correct = judged = 0
    for k, (fit_on, evaluate) in enumerate(data.folds):
        model = fitter.fit(
            [data.texts[i] for i in fit_on],
            [data.labels[i] for i in fit_on],
            label_set=data.label_set,
            params=params,
            sample_weight=None if data.weights is None else [data.weights[i] for i in fit_on],
            seed=seed,
        )
        proba = model.predict_proba([data.texts[i] for i in evaluate])
        predicted = [model.labels[j] for j in np.asarray(proba).argmax(axis=1)]
        hits = sum(p == data.labels[i] for p, i in zip(predicted, evaluate, strict=True))
        scores.append(hits / len(evaluate))
        correct += hits
        judged += len(evaluate)
        if after_fold is not None:
            after_fold(k, correct / judged)
    return FoldScores(scores, correct, judged)


def pooled(scores: Sequence[float], sizes: Sequence[int]) -> float:
    """The share right over all blocks, from each block's share and size."""
    total = sum(sizes)
    return sum(s * n for s, n in zip(scores, sizes, strict=True)) / total if total else 0.0
