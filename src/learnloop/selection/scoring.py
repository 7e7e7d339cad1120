"""A candidate's selection score: forward chaining over time-ordered training data. Each fold
fits the family on what came before a block and predicts the block; the score is the share
of the blocks' examples it got right (pooled over the folds), with each fold's own share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from learnloop.families import get_family
from learnloop.families.base import ModelFamily, Predictor

# Updates of the champion an update candidate's folds replay (``score_updates``).
UPDATES = 4
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
    update_size: int = 0  # examples an update of the champion trains on (those it never saw)

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
    return _scored(data, lambda fit_on: _fitted(fitter, data, fit_on, params, seed), after_fold)


def score_updates(
    family: str, params: Mapping[str, Any], data: SelectionData, *, updates: int = UPDATES, seed: int = 0
) -> FoldScores:
    """An update's selection score: what the champion's own history did, replayed on each fold.
    The champion cannot be scored here (it trained on every block), so each fold's model is
    the chain of updates the loop would have made up to the block: a fit from scratch on its
    older rows (at least half of them), then up to ``updates`` updates of ``data.update_size``
    rows each (the size of the update the retrain would make), in time order, each continuing
    the last (``ModelFamily.fit``'s ``previous``). What a chain learns less than a refit of
    the same rows, or forgets, shows on the block as it does after a shift."""
    fitter = get_family(family)
    size = max(1, data.update_size)

    def chain(fit_on: list[int]) -> Predictor:
        cut = len(fit_on) - min(updates, len(fit_on) // (2 * size)) * size
        model = _fitted(fitter, data, fit_on[:cut], params, seed)
        for start in range(cut, len(fit_on), size):
            model = _fitted(fitter, data, fit_on[start : start + size], params, seed, previous=model)
        return model

    return _scored(data, chain)


def _fitted(
    fitter: ModelFamily,
    data: SelectionData,
    rows: Sequence[int],
    params: Mapping[str, Any],
    seed: int,
    previous: Predictor | None = None,
) -> Predictor:
    return fitter.fit(
        [data.texts[i] for i in rows],
        [data.labels[i] for i in rows],
        label_set=data.label_set,
        params=params,
        sample_weight=None if data.weights is None else [data.weights[i] for i in rows],
        seed=seed,
        previous=previous,
    )


def _scored(
    data: SelectionData, fold_model: Callable[[list[int]], Predictor], after_fold: FoldHook | None = None
) -> FoldScores:
    """Each fold's model (``fold_model`` of its fit rows) scored on the fold's block."""
    scores: list[float] = []
    correct = judged = 0
    for k, (fit_on, evaluate) in enumerate(data.folds):
        hits = _hits(fold_model(fit_on), data, evaluate)
        scores.append(hits / len(evaluate))
        correct += hits
        judged += len(evaluate)
        if after_fold is not None:
            after_fold(k, correct / judged)
    return FoldScores(scores, correct, judged)


def _hits(model: Predictor, data: SelectionData, evaluate: Sequence[int]) -> int:
    proba = model.predict_proba([data.texts[i] for i in evaluate])
    predicted = [model.labels[j] for j in np.asarray(proba).argmax(axis=1)]
    return sum(p == data.labels[i] for p, i in zip(predicted, evaluate, strict=True))


def pooled(scores: Sequence[float], sizes: Sequence[int]) -> float:
    """The share right over all blocks, from each block's share and size."""
    total = sum(sizes)
    return sum(s * n for s, n in zip(scores, sizes, strict=True)) / total if total else 0.0
