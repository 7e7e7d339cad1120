"""Hashed word n-grams and a softmax regression trained with differential privacy (DP-SGD,
through Opacus): the family for a model whose weights must not give away any one training row.

What the guarantee covers. The saved weights are (epsilon, delta)-differentially private with
respect to adding or removing one training row: Opacus clips each row's gradient to
``max_grad_norm``, adds Gaussian noise calibrated by its accountant to ``target_epsilon`` over
the whole fit, and draws each step's rows by Poisson sampling; the epsilon the accountant says
was spent, the delta, the accountant and the noise are recorded on the version
(``metrics["privacy"]``, ``learnloop versions --version N``, ``lineage.privacy`` in the API).

Nothing else is fitted on the private rows. The features are a ``HashingVectorizer``'s (no
vocabulary, no IDF: a TF-IDF vectorizer's vocabulary and document frequencies are computed from
the rows themselves and would leak which rare words occur in them, outside any noise); the
label order is the model's. What the fit reveals beyond epsilon, by design: which labels occur
at all (a label with no row gets probability 0, as in every family) and the number of rows (it
sets the sampling rate and the default delta, as Opacus treats it).

What it does not cover, honestly: the curation before the fit (deduplication, conflicts, the
noise filter, subject caps and weights decide which rows train, from the rows themselves); the
gate's metrics and verdict, computed on private evaluation rows and, for the recent set, on
forward-chaining fold models each trained with the same budget; and the training weights, which
this family does not apply (a row's weight derives from other rows, so it would let one row move
the gradients of others). The unit is one row: a subject with many rows is protected by
``epsilon`` times their number at most. A retrain spends a fresh budget on data that overlaps
the last one: budgets of successive versions add up for the rows they share.

Randomness. By default the noise and the batches come from the operating system's entropy,
never from the fit's seed: whoever knows the seed and the code could replay the noise and undo
the guarantee. ``reproducible_noise`` draws them from the seed instead (tests, benchmarks; it is
recorded with the version). Opacus's ``secure_mode`` (a cryptographically secure generator,
against floating-point attacks on the Gaussian sampler) needs ``torchcsprng``, which has no
build for the torch learnloop pins: the noise is torch's pseudo-random generator, as Opacus
warns, which this family says in the version's record (``secure_mode: false``).

Training needs the ``privacy`` extra (Opacus, on the CPU build of torch); serving does not: a
version is its weights (``numpy``) and the hashing settings, loaded without torch.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from learnloop.errors import ArtifactError, InsufficientDataError, MissingExtraError
from learnloop.families.base import FloatArray, ParamSpec, Predictor
from learnloop.families.incremental import hashing_vectorizer
from learnloop.families.label_columns import class_columns, spread

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import HashingVectorizer

INSTALL_PRIVACY = "pip install 'learnloop[privacy]'"
_WEIGHTS = "weights.npz"
_MODEL = "model.json"


class DpLogRegPredictor:
    """Softmax over ``features(texts) @ coef + intercept``; ``classes`` the labels it trained on."""

    def __init__(
        self,
        coef: FloatArray,
        intercept: FloatArray,
        classes: Sequence[str],
        labels: Sequence[str],
        hashing: Mapping[str, int],
        privacy: Mapping[str, Any],
    ) -> None:
        self.coef: FloatArray = np.ascontiguousarray(coef, dtype=np.float64)  # (n_features, classes)
        self.intercept: FloatArray = np.asarray(intercept, dtype=np.float64)
        self.classes = tuple(classes)
        self._labels = tuple(labels)
        self._columns = class_columns(self.classes, self._labels)
        self.hashing = dict(hashing)
        self.vectorizer: HashingVectorizer = hashing_vectorizer(self.hashing)
        self.privacy = dict(privacy)

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    def features(self, texts: Sequence[str]) -> Any:
        """The model's own feature map: texts to their sparse hashed n-gram matrix."""
        return self.vectorizer.transform(texts)

    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        if len(texts) == 0:
            return np.zeros((0, len(self._labels)))
        scores = np.asarray(self.features(texts) @ self.coef) + self.intercept
        scores -= scores.max(axis=1, keepdims=True)
        weights = np.exp(scores)
        return spread(weights / weights.sum(axis=1, keepdims=True), self._columns, len(self._labels))

    def predict_one(self, text: str) -> tuple[str, dict[str, float]]:
        row = self.predict_proba([text])[0]
        probabilities = {label: float(p) for label, p in zip(self._labels, row, strict=True)}
        return max(probabilities, key=probabilities.__getitem__), probabilities


def require_privacy_extra() -> None:
    import importlib.util

    missing = [name for name in ("torch", "opacus") if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"the dp-logreg family trains with Opacus: {INSTALL_PRIVACY} (missing: {', '.join(missing)})",
            extra="privacy",
        )


class DpLogRegFamily:
    key = "dp-logreg"
    summary = "Hashed n-grams and a softmax regression trained with DP-SGD (Opacus): (epsilon, delta) per row."
    format_version = 1
    task = "classification"
    trainable = True

    def library_versions(self) -> dict[str, str]:
        import sklearn  # the hashing of the features; the weights are plain numpy arrays

        return {"scikit-learn": sklearn.__version__}

    def parameters(self) -> tuple[ParamSpec, ...]:
        from learnloop.families.param_models import DpLogRegParams, describe

        return describe(DpLogRegParams)

    def resolve_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        from learnloop.families.param_models import DpLogRegParams, resolve

        return resolve(DpLogRegParams, self.key, params)

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
    ) -> DpLogRegPredictor:
        """DP-SGD from zero weights; ``sample_weight`` and ``previous`` are not used (see the
        module's docstring: weights derive from other rows; continuing a model trained on the
        same rows would spend its budget again without saying so)."""
        p = self.resolve_params(params)
        if len(set(labels)) < 2:
            raise InsufficientDataError(f"training needs at least two distinct labels, got {sorted(set(labels))}")
        require_privacy_extra()
        hashing = {"n_features": p["n_features"], "ngram_max": p["ngram_max"]}
        classes = sorted(set(labels))
        index = {label: i for i, label in enumerate(classes)}
        features = hashing_vectorizer(hashing).transform(texts).astype(np.float32).tocsr()
        targets = np.fromiter((index[label] for label in labels), dtype=np.int64, count=len(labels))
        from learnloop.families.dp_sgd import train_softmax

        coef, intercept, privacy = train_softmax(features, targets, len(classes), p, _seeds(seed, p))
        return DpLogRegPredictor(coef, intercept, classes, label_set, hashing, privacy)

    def save(self, predictor: Any, directory: Path) -> None:
        if not isinstance(predictor, DpLogRegPredictor):
            raise ArtifactError(f"{self.key} cannot save a {type(predictor).__name__}")
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / _WEIGHTS).open("wb") as f:
            np.savez_compressed(f, coef=predictor.coef, intercept=predictor.intercept)
        document = {
            "classes": list(predictor.classes),
            "labels": list(predictor.labels),
            "hashing": predictor.hashing,
            "privacy": predictor.privacy,
        }
        (directory / _MODEL).write_text(json.dumps(document, indent=2, sort_keys=True))

    def load(self, directory: Path) -> DpLogRegPredictor:
        try:
            document = json.loads((directory / _MODEL).read_text())
            with np.load(directory / _WEIGHTS, allow_pickle=False) as weights:
                coef, intercept = weights["coef"], weights["intercept"]
            return DpLogRegPredictor(
                coef, intercept, document["classes"], document["labels"], document["hashing"], document["privacy"]
            )
        except FileNotFoundError as exc:
            raise ArtifactError(f"artifact file missing: {exc.filename or directory}") from exc
        except Exception as exc:  # a corrupt file raises many kinds of errors
            raise ArtifactError(f"artifact {directory} is corrupt: {type(exc).__name__}: {exc}") from exc


def _seeds(seed: int, p: Mapping[str, Any]) -> tuple[int, int]:
    """The seeds of the batch sampler and of the noise: from ``seed`` only when the parameters
    ask for reproducible noise, else from the operating system's entropy."""
    if p["reproducible_noise"]:
        base = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)
        return int(base[0] >> np.uint64(1)), int(base[1] >> np.uint64(1))
    return secrets.randbits(63), secrets.randbits(63)
