"""A version's drift reference: every detector's summary of data the version was not trained on.

Fitted when the version is trained (``tasks.classification.fit``, in the training process) on
its golden set texts with the version's own probabilities on them, and with the model's
vocabulary when its family exposes one. Stored as one JSON artifact
(``drift/<model>/<artifact>.json``) whose key the version's metrics record under
``drift_reference``.

A family opts in to the feature-based detectors by giving its predictor the methods of
``ExposesVocabulary`` / ``ExposesFeatures`` (tfidf-logreg has both); a predictor without them is
checked on words and a hashed bag of words instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from learnloop.drift import FeatureMap, ReferenceData, fit_all
from learnloop.drift.stats import FloatArray
from learnloop.errors import ArtifactError

REFERENCE_FORMAT_VERSION = 1
METRICS_KEY = "drift_reference"  # the version metric holding the reference's URI
METRICS_ERROR_KEY = "drift_reference_error"  # why a version has none


@runtime_checkable
class ExposesVocabulary(Protocol):
    def vocabulary(self) -> frozenset[str]: ...


@runtime_checkable
class ExposesFeatures(Protocol):
    def features(self, texts: Sequence[str]) -> Any: ...


def vocabulary_of(predictor: object) -> frozenset[str] | None:
    return predictor.vocabulary() if isinstance(predictor, ExposesVocabulary) else None


def feature_map_of(predictor: object) -> FeatureMap | None:
    return predictor.features if isinstance(predictor, ExposesFeatures) else None


@dataclass(frozen=True)
class DriftReference:
    labels: tuple[str, ...]
    n: int
    source: str  # which texts: "golden"
    vocabulary: str  # "model" or "reference texts"
    summaries: dict[str, dict[str, Any]]

    def to_bytes(self) -> bytes:
        document = {
            "format_version": REFERENCE_FORMAT_VERSION,
            "labels": list(self.labels),
            "n": self.n,
            "source": self.source,
            "vocabulary": self.vocabulary,
            "summaries": self.summaries,
        }
        return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes, uri: str) -> DriftReference:
        try:
            document: Mapping[str, Any] = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"drift reference {uri} is corrupt: {exc}") from exc
        if document.get("format_version") != REFERENCE_FORMAT_VERSION:
            raise ArtifactError(
                f"drift reference {uri} has format {document.get('format_version')!r}; "
                f"this learnloop reads {REFERENCE_FORMAT_VERSION}"
            )
        return cls(
            labels=tuple(document["labels"]),
            n=int(document["n"]),
            source=str(document["source"]),
            vocabulary=str(document["vocabulary"]),
            summaries={str(k): dict(v) for k, v in document["summaries"].items()},
        )


def fit_reference(
    predictor: object, texts: Sequence[str], probabilities: FloatArray, labels: Sequence[str], *, source: str
) -> DriftReference:
    """Every detector's summary of ``texts`` (held out from the version's training) and the
    version's ``probabilities`` on them (columns in ``labels`` order)."""
    vocabulary = vocabulary_of(predictor)
    reference = ReferenceData(list(texts), np.asarray(probabilities, dtype=np.float64), tuple(labels), vocabulary)
    return DriftReference(
        labels=tuple(labels),
        n=len(texts),
        source=source,
        vocabulary="model" if vocabulary is not None else "reference texts",
        summaries=fit_all(reference),
    )


def reference_key(model: str, artifact_key: str) -> str:
    """Where a version's reference lives, named after the version's artifact."""
    return f"drift/{model}/{artifact_key.rstrip('/').rsplit('/', 1)[-1]}.json"
