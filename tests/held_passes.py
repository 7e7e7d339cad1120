"""Forward passes a test controls: a predictor that batches (``BatchedPrediction``) and holds
each pass until the test lets it go, so tests of the batcher and of admission decide what is
waiting when, whatever the machine's load (no sleeps, no timing).

``HeldPredictor(inner)`` answers as ``inner`` does; ``hold()`` makes the next passes wait at
their start until ``release()``; ``started`` is set when a held pass has begun (it is in the
worker thread then, with its texts taken); ``passes`` lists the texts of each pass run.
``hold_every_load(monkeypatch)`` wraps every predictor the model cache loads, so an app's
models batch and their passes are held by one ``Holds``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from learnloop.families.base import BatchedPrediction, FloatArray, Predictor


class Holds:
    """The switch shared by held predictors: held or not, and whether a pass waits on it."""

    def __init__(self) -> None:
        self._go = threading.Event()
        self._go.set()
        self.started = threading.Event()
        self.passes: list[list[str]] = []

    def hold(self) -> None:
        self._go.clear()
        self.started.clear()

    def release(self) -> None:
        self._go.set()

    def wait_started(self, timeout: float = 30.0) -> None:
        assert self.started.wait(timeout), "no pass started"

    def enter(self, texts: Sequence[str]) -> None:
        self.passes.append(list(texts))
        self.started.set()
        assert self._go.wait(60.0), "a held pass was never released"


class HeldPredictor(BatchedPrediction):
    def __init__(self, inner: Predictor, holds: Holds | None = None) -> None:
        self.inner = inner
        self.holds = holds or Holds()

    @property
    def labels(self) -> tuple[str, ...]:
        return self.inner.labels

    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        self.holds.enter(texts)
        return self.inner.predict_proba(texts)

    def predict_one(self, text: str) -> tuple[str, dict[str, float]]:
        return self.inner.predict_one(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def hold_every_load(monkeypatch: pytest.MonkeyPatch) -> Holds:
    """Every version the model cache loads from now on batches, its passes held by the result."""
    from learnloop.routing import cache

    holds = Holds()
    load = cache.load_predictor

    def held(*args: Any, **kwargs: Any) -> Predictor:
        return HeldPredictor(load(*args, **kwargs), holds)

    monkeypatch.setattr(cache, "load_predictor", held)
    return holds
