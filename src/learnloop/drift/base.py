"""The ``DriftDetector`` protocol and the types every detector shares.

A detector has a stable ``key`` and two steps, kept apart so a check stays fast however much
data there is:

* ``fit(reference)`` runs once, when a version is trained, on data the version was not trained
  on (its golden set and the version's own probabilities on it). It returns a *summary*: a
  small JSON-serialisable dict (bins, counts, a quantile sketch, a sample, a Bloom filter), at
  most a few hundred kilobytes however large the reference, stored with the version.
* ``check(summary, window, features=...)`` compares a window of live traffic with the summary
  and returns a ``DriftResult``. ``features`` is the serving version's own feature map, for the
  detectors that work on features; they keep reference *texts* in the summary and map both sides
  at check time, so the two always go through the same map (which is why ``ReferenceData`` has
  no feature map).

Every decision needs both a significant test (``p_value < alpha``) and an effect at least
``effect_threshold``, so a huge window does not alarm on a trivial change; a window smaller
than the detector's ``min_window`` (or a reference smaller than ``min_reference``) gives the
status ``insufficient_data`` and never alarms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from learnloop.drift.stats import FloatArray
from learnloop.errors import ArtifactError, ValidationError

FeatureMap = Callable[[Sequence[str]], Any]
"""The model's own feature map, e.g. a fitted TF-IDF vectorizer's ``transform``: texts to an
(n, d) matrix, dense or scipy sparse."""

Status = Literal["ok", "drift", "insufficient_data"]

SUMMARY_FORMAT_VERSION = 1


def _check_probabilities(probabilities: FloatArray, n_texts: int, labels: tuple[str, ...], what: str) -> None:
    if probabilities.ndim != 2 or probabilities.shape != (n_texts, len(labels)):
        raise ValidationError(
            f"{what}.probabilities must have shape (len(texts), len(labels)) = ({n_texts}, {len(labels)}), "
            f"got {probabilities.shape}",
            field=f"{what}.probabilities",
        )
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ValidationError(f"{what}.labels must be two or more distinct labels: {labels}", field=f"{what}.labels")
    if probabilities.size and not np.all(np.isfinite(probabilities)):
        raise ValidationError(f"{what}.probabilities must be finite", field=f"{what}.probabilities")


@dataclass(frozen=True)
class ReferenceData:
    """What is known when a version is trained.

    ``texts`` must be held out from the version's training (the golden set): the text detectors
    measure what fresh text looks like against it (a vocabulary checked against its own training
    texts would show no unknown words at all). ``probabilities`` are the version's
    ``predict_proba`` on them, columns in ``labels`` order. ``vocabulary`` is the model's own
    (n-grams with a space are ignored), when it has one."""

    texts: Sequence[str]
    probabilities: FloatArray
    labels: tuple[str, ...]
    vocabulary: frozenset[str] | None = None
    # A model whose answers are text (a generative task's): answers of the kind the version was
    # trained to give, for the detectors of answers (``RESPONSE_DETECTORS``); None: no text answers
    responses: Sequence[str] | None = None

    def __post_init__(self) -> None:
        _check_probabilities(np.asarray(self.probabilities), len(self.texts), tuple(self.labels), "reference")


@dataclass(frozen=True)
class Window:
    """Live traffic to check: the texts served and their probabilities (columns in ``labels``
    order) and, for a model whose answers are text, the answer to each text (``responses``)."""

    texts: Sequence[str]
    probabilities: FloatArray
    labels: tuple[str, ...]
    responses: Sequence[str] | None = None

    def __post_init__(self) -> None:
        _check_probabilities(np.asarray(self.probabilities), len(self.texts), tuple(self.labels), "window")
        if self.responses is not None and len(self.responses) != len(self.texts):
            raise ValidationError(
                f"window.responses must hold one answer per text: {len(self.responses)} for {len(self.texts)} texts",
                field="window.responses",
            )

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class DriftResult:
    """The outcome of one check. ``drifted`` is ``p_value < alpha and effect_size >= effect_threshold``;
    ``statistic``, ``p_value`` and ``effect_size`` are None when the data were insufficient.
    ``detail`` holds per-bin values and the like, for plots; ``message`` is one sentence."""

    detector: str
    test: str
    statistic: float | None
    p_value: float | None
    effect: str
    effect_size: float | None
    effect_threshold: float
    alpha: float
    n_reference: int
    n_window: int
    drifted: bool
    status: Status
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (no NaN, no numpy types)."""
        plain: dict[str, Any] = _plain(asdict(self))
        return plain


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    return value


@runtime_checkable
class DriftDetector(Protocol):
    """One drift statistic under a stable ``key``; thresholds are the instance's own."""

    key: str
    description: str
    min_window: int
    min_reference: int
    alpha: float
    effect_threshold: float

    def fit(self, reference: ReferenceData) -> dict[str, Any]:
        """A small JSON-serialisable summary of the reference; does not modify ``reference``."""
        ...

    def check(self, summary: Mapping[str, Any], window: Window, *, features: FeatureMap | None = None) -> DriftResult:
        """Compare ``window`` with a summary this detector's ``fit`` made; modifies neither."""
        ...


# -- helpers for implementations ---------------------------------------------------------------


class Thresholds:
    """The decision settings every detector takes: significance ``alpha``, the effect size at
    which a significant change counts as drift (``default_effect`` of the detector unless given),
    the smallest window and reference it judges, and a ``seed`` for any sampling it does."""

    default_effect: float = 0.10

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        effect_threshold: float | None = None,
        min_window: int = 200,
        min_reference: int = 100,
        seed: int = 0,
    ) -> None:
        self.alpha = alpha
        self.effect_threshold = self.default_effect if effect_threshold is None else effect_threshold
        self.min_window = min_window
        self.min_reference = min_reference
        self.seed = seed


def summary_header(key: str, n_reference: int) -> dict[str, Any]:
    return {"key": key, "format_version": SUMMARY_FORMAT_VERSION, "n_reference": int(n_reference)}


def read_summary(summary: Mapping[str, Any], key: str) -> int:
    """Refuse a summary of another detector or format; return its reference size."""
    if summary.get("key") != key:
        raise ArtifactError(f"drift summary is for detector {summary.get('key')!r}, not {key!r}")
    if summary.get("format_version") != SUMMARY_FORMAT_VERSION:
        raise ArtifactError(
            f"drift summary for {key!r} has format version {summary.get('format_version')!r}; "
            f"this learnloop reads {SUMMARY_FORMAT_VERSION} (fit the reference again)"
        )
    return int(summary["n_reference"])


def check_labels(summary: Mapping[str, Any], window: Window) -> None:
    if tuple(summary["labels"]) != tuple(window.labels):
        raise ValidationError(
            f"window labels {list(window.labels)} differ from the reference's {list(summary['labels'])}",
            field="window.labels",
        )


def insufficient(
    detector: DriftDetector, *, test: str, effect: str, n_reference: int, n_window: int, what: str
) -> DriftResult | None:
    """The ``insufficient_data`` result when either side is below its minimum, else None."""
    if n_window >= detector.min_window and n_reference >= detector.min_reference:
        return None
    return DriftResult(
        detector=detector.key,
        test=test,
        statistic=None,
        p_value=None,
        effect=effect,
        effect_size=None,
        effect_threshold=detector.effect_threshold,
        alpha=detector.alpha,
        n_reference=n_reference,
        n_window=n_window,
        drifted=False,
        status="insufficient_data",
        message=(
            f"{what}: not checked, {n_window} window item(s) and {n_reference} reference item(s); "
            f"needs at least {detector.min_window} and {detector.min_reference}"
        ),
        detail={"min_window": detector.min_window, "min_reference": detector.min_reference},
    )


def decide(
    detector: DriftDetector,
    *,
    test: str,
    statistic: float,
    p_value: float,
    effect: str,
    effect_size: float,
    n_reference: int,
    n_window: int,
    what: str,
    detail: dict[str, Any],
) -> DriftResult:
    """The result of a completed check: drift only when significant *and* large enough."""
    significant = p_value < detector.alpha
    large = effect_size >= detector.effect_threshold
    drifted = significant and large
    numbers = (
        f"{effect} {effect_size:.3g} {'>=' if large else '<'} {detector.effect_threshold:g}, "
        f"{test} p={p_value:.2g} {'<' if significant else '>='} {detector.alpha:g}"
    )
    if drifted:
        message = f"{what} drifted ({numbers})"
    elif significant:
        message = f"{what}: a significant but small change, not drift ({numbers})"
    else:
        message = f"{what}: no drift ({numbers})"
    return DriftResult(
        detector=detector.key,
        test=test,
        statistic=float(statistic),
        p_value=float(p_value),
        effect=effect,
        effect_size=float(effect_size),
        effect_threshold=detector.effect_threshold,
        alpha=detector.alpha,
        n_reference=n_reference,
        n_window=n_window,
        drifted=drifted,
        status="drift" if drifted else "ok",
        message=message,
        detail=_plain(detail),
    )
