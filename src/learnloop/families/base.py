"""The ``ModelFamily`` protocol: how learnloop trains, saves, loads and runs a model.

A family is a stateless factory with a stable string ``key`` (persisted with every version)
and a ``format_version`` (bumped when its saved layout changes). ``fit`` returns a
``Predictor``; ``save``/``load`` move a predictor to and from a directory. ``manifest``
wraps the directory in a manifest (family key, format version, library versions, file
hashes) and refuses to load a mismatch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ParamSpec:
    """One parameter as ``learnloop families`` and ``GET /v1/families`` show it."""

    name: str
    type: str
    default: Any
    description: str


@runtime_checkable
class Predictor(Protocol):
    """A trained model. ``labels`` orders the columns of ``predict_proba``."""

    @property
    def labels(self) -> tuple[str, ...]: ...

    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        """Probabilities, one row per text, columns in ``labels`` order, rows sum to 1."""
        ...

    def predict_one(self, text: str) -> tuple[str, dict[str, float]]:
        """The serving fast path: the top label and the probabilities of one text."""
        ...


class BatchedPrediction:
    """A predictor whose one-text call costs about what a batch costs (a neural encoder's
    forward pass) inherits this: the server answers its concurrent requests together, in one
    ``predict_proba`` off the event loop (``routing.batching``), instead of one by one."""


class ModelFamily(Protocol):
    key: str
    summary: str  # one line for ``learnloop families``
    format_version: int
    task: str  # the key of the task it serves (``learnloop.tasks``): "classification"
    trainable: bool  # learnloop can fit its versions (not so for answers made elsewhere)

    def library_versions(self) -> dict[str, str]:
        """Versions of the libraries whose formats the saved artifact depends on."""
        ...

    def parameters(self) -> tuple[ParamSpec, ...]:
        """Every parameter ``resolve_params`` knows, with its type, default and description."""
        ...

    def resolve_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults merged with ``params``; raises ``ValidationError`` on an unknown or bad one."""
        ...

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        label_set: Sequence[str],
        params: Mapping[str, Any],
        sample_weight: Sequence[float] | None = None,
        seed: int = 0,
        previous: Predictor | None = None,
    ) -> Predictor:
        """A predictor trained on the examples. ``previous`` is the version this one succeeds
        (the champion, in a retrain), of this family or not: a family may start from it (continue
        its model, reuse what it computed) or ignore it; either way the result must be a model
        of these examples that stands on its own."""
        ...

    def save(self, predictor: Predictor, directory: Path) -> None: ...

    def load(self, directory: Path) -> Predictor: ...


@runtime_checkable
class SubsetFitting(Protocol):
    """What a family may offer besides ``fit``: the models of several subsets of one set of rows
    (a retrain's candidate and its forward-chaining fold models) with shared work done once."""

    def fit_many(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        subsets: Sequence[Sequence[int] | None],
        label_set: Sequence[str],
        params: Mapping[str, Any],
        sample_weight: Sequence[float] | None = None,
        seed: int = 0,
        previous: Predictor | None = None,
    ) -> Iterator[Predictor]:
        """For each subset of row indices (``None``: every row), in order, the predictor ``fit``
        on those rows alone gives (the same predictions); nothing of a row outside a subset
        reaches its model."""
        ...


@runtime_checkable
class Continuing(Protocol):
    """What a family whose ``fit`` *continues* ``previous`` offers (an update: its model is not
    the one a fit from scratch makes, as ``incremental``'s ``partial_fit`` is not): whether it
    would continue ``previous`` on these labels with these parameters. A retrain then tries
    the update and a fit from scratch (a refit) side by side and keeps the one its
    forward-chaining folds score higher (``learnloop.selection``)."""

    def continues(self, previous: Predictor, labels: Sequence[str], params: Mapping[str, Any]) -> bool: ...


@runtime_checkable
class PrivacyAccounted(Protocol):
    """What a predictor trained with differential privacy offers besides ``Predictor``: the
    guarantee its weights carry (``epsilon`` spent, ``delta``, the accountant, the noise), which
    a retrain records on the version (``metrics["privacy"]``)."""

    privacy: Mapping[str, Any]


def family_listing(family: ModelFamily) -> dict[str, Any]:
    """A family as ``learnloop families --json`` and ``GET /v1/families`` list it: key, task,
    summary and every parameter (``ParamSpec``)."""
    return {
        "family": family.key,
        "task": family.task,
        "summary": family.summary,
        "parameters": [asdict(p) for p in family.parameters()],
    }
