"""The three baselines a replay is measured against, on the same stream.

* **static**: the bootstrap model, never retrained (what a team has without a loop);
* **oracle**: the same family refitted every ``every`` items on the bootstrap data plus every
  true label seen so far, with no delay, no noise and no gate (the upper limit of the loop);
* **naive**: the same family refitted every ``every`` labels on the bootstrap data plus every
  label the simulated users gave so far (the loop's own feedback: its rate, delay, noise and
  adversaries), with no curation and no gate, the newest fit always serving (what a team has
  with a retrain cron job). Against it, the replay shows what the gate costs and what it saves.

All are fitted the way version 1 is (same family, parameters, training split and seed), so
the static baseline predicts exactly what version 1 serves. A family that fits several
subsets sharing work (``SubsetFitting``) fits each baseline's models in one pass.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from learnloop.families import get_family
from learnloop.families.base import Predictor, SubsetFitting
from learnloop.replay.report import Trace
from learnloop.replay.users import PlannedFeedback
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
    """Version 1 never retrained: fitted on the bootstrap rows once, predicting every item."""
    refits = _Refits(family, params, label_set, [t for t, _ in train], [lab for _, lab in train], None, seed)
    return refits.predict("static", [(len(train), 0, len(stream_texts))], stream_texts, None)


@dataclass(frozen=True)
class _Refits:
    """Prequential predictions of models fitted on growing prefixes of ``texts``: per step
    ``(rows, start, stop)``, a model of the first ``rows`` rows predicts items ``start:stop``."""

    family: str
    params: dict[str, Any]
    label_set: Sequence[str]
    texts: list[str]
    labels: list[str]
    weights: list[float] | None
    seed: int

    def _models(self, steps: list[tuple[int, int, int]]) -> Iterator[Predictor]:
        fam = get_family(self.family)
        common: dict[str, Any] = {"label_set": self.label_set, "params": self.params, "seed": self.seed}
        prefixes = [range(rows) for rows, _, _ in steps]
        if isinstance(fam, SubsetFitting):
            yield from fam.fit_many(self.texts, self.labels, subsets=prefixes, sample_weight=self.weights, **common)
            return
        for rows in prefixes:
            weights = None if self.weights is None else self.weights[: len(rows)]
            yield fam.fit(self.texts[: len(rows)], self.labels[: len(rows)], sample_weight=weights, **common)

    def predict(
        self, name: str, steps: list[tuple[int, int, int]], items: Sequence[str], progress: Progress | None
    ) -> Baseline:
        out: list[str] = []
        for (_, start, stop), model in zip(steps, self._models(steps), strict=True):
            out += predict_labels(model, list(items[start:stop]), list(self.label_set))[0]
            if progress is not None:
                progress(stop, len(items))
        return Baseline(name, out, len(steps))


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
    n = len(stream_texts)
    texts = [t for t, _ in train] + list(stream_texts[: max(n - 1, 0)])
    labels = [lab for _, lab in train] + list(stream_labels[: max(n - 1, 0)])
    weights = None if feedback_weight == 1.0 else [1.0] * len(train) + [feedback_weight] * (len(texts) - len(train))
    steps = [(len(train) + start, start, min(start + every, n)) for start in range(0, n, every)]
    refits = _Refits(family, params, label_set, texts, labels, weights, seed)
    return refits.predict("oracle", steps, stream_texts, progress)


def naive_baseline(
    family: str,
    params: dict[str, Any],
    label_set: Sequence[str],
    train: Sequence[tuple[str, str]],
    stream_texts: Sequence[str],
    feedback: Sequence[tuple[int, str, str]],
    *,
    every: int,
    feedback_weight: float = 1.0,
    seed: int = 0,
    progress: Progress | None = None,
) -> Baseline:
    """Prequential predictions of a model refitted after every ``every`` labels on all labels
    given so far: ``feedback`` holds ``(after, text, label)`` in the order given, ``after`` the
    last item answered before the label arrived (a refit serves from the next item on)."""
    n = len(stream_texts)
    texts = [t for t, _ in train] + [text for _, text, _ in feedback]
    labels = [lab for _, lab in train] + [label for _, _, label in feedback]
    weights = None if feedback_weight == 1.0 else [1.0] * len(train) + [feedback_weight] * len(feedback)
    starts = [0] + [min(feedback[k - 1][0] + 1, n) for k in range(every, len(feedback) + 1, every)]
    rows = [len(train) + k for k in range(0, len(feedback) + 1, every)]
    # Refits that land before the same item: the newest serves it.
    steps = [
        (rows[i], starts[i], starts[i + 1] if i + 1 < len(starts) else n)
        for i in range(len(starts))
        if i + 1 == len(starts) or starts[i + 1] > starts[i]
    ]
    refits = _Refits(family, params, label_set, texts, labels, weights, seed)
    return refits.predict("naive", steps, stream_texts, progress)


def served_label(trace: Trace, item: int) -> str | None:
    """What the loop answered to stream item ``item`` (None if it was not answered)."""
    at = bisect.bisect_left(trace.items, item)
    return trace.served[at] if at < len(trace.items) and trace.items[at] == item else None


def implied_label(feedback: PlannedFeedback, served: str | None, label_set: Sequence[str]) -> str | None:
    """The label a feedback event gives the naive baseline: the one it names; for thumbs, the
    answer judged (up), or the other label of two (down); else none."""
    if feedback.label is not None:
        return feedback.label
    if served is None or feedback.thumbs is None:
        return None
    if feedback.thumbs == "up":
        return served
    others = [label for label in label_set if label != served]
    return others[0] if len(others) == 1 else None


def naive_feedback(trace: Trace, texts: Sequence[str]) -> list[tuple[int, str, str]]:
    """The labels the users gave, as ``naive_baseline`` takes them (stream texts by index)."""
    return [
        (after, texts[item], label)
        for after, item, label in zip(trace.feedback_sent, trace.feedback_item, trace.feedback_label, strict=True)
        if label is not None
    ]
