"""A linear model on hashed word n-grams, trained by stochastic gradient descent (scikit-learn's
``SGDClassifier``, logistic loss) and *updated* rather than refitted: the family for a loop that
should answer better seconds after the feedback that shows it how.

``fit`` without a ``previous`` version (or with one it cannot continue: another family, other
hashing settings, a label it never saw) trains from scratch: ``epochs`` shuffled passes of
``partial_fit``. With one, it continues that version's model: ``update_epochs`` passes of
``partial_fit`` over the examples that version never trained on (found by text hash) mixed with
a sample of earlier examples from its replay buffer (``replay_ratio`` per new one), against
forgetting what the old data taught, with a small constant step (``update_step``): the
``optimal`` schedule of a fit from scratch is still at steps of ~3-10 (1 / (alpha (t + t0)),
alpha 1e-5), and a few passes of such steps over a hundred new examples overwrite what the
bootstrap data taught (on the ``topic`` scenario updates were 3-8 points worse than a refit on
the old domain's golden set). The features need no fitting (``HashingVectorizer``), so
an update's cost is the new examples', whatever was trained before. A version keeps the
hashes of every text it trained on and a bounded, uniformly sampled replay buffer
(``replay_size`` examples). An update is still a candidate: the gate judges it like any other.
A retrain also fits from scratch beside it and keeps the one the selection's forward-chaining
folds score higher (``Continuing``; the update's folds replay a chain of updates): on the
``topic`` scenario a chain of updates learnt a new domain less than a refit of the same rows.
A champion that learnt from data erased since is not continued (the retrain passes no
``previous``: ``TrainSpec.continue_champion``), so an erased subject's texts leave its buffer.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from learnloop.errors import ArtifactError, InsufficientDataError
from learnloop.families.base import FloatArray, ParamSpec, Predictor
from learnloop.families.label_columns import class_columns, spread
from learnloop.families.text_keys import keys_from_array, keys_to_array, text_key

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import SGDClassifier

_MODEL = "model.joblib"
_SEEN = "seen.npy"


@dataclass(frozen=True)
class Replay:
    """Earlier examples kept for updates: texts, labels, weights."""

    texts: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()

    def __len__(self) -> int:
        return len(self.texts)


class IncrementalPredictor:
    def __init__(
        self,
        classifier: SGDClassifier,
        labels: Sequence[str],
        hashing: Mapping[str, int],
        seen: frozenset[bytes],
        replay: Replay,
    ) -> None:
        self.classifier = classifier
        self._labels = tuple(labels)
        self._columns = class_columns(classifier.classes_, self._labels)
        self.hashing = dict(hashing)
        self.vectorizer = hashing_vectorizer(self.hashing)
        self.seen = seen
        self.replay = replay
        # sklearn's decision_function costs ~20 ms a call on 2**20 columns; a sparse row times
        # the contiguous transposed coefficients is the same numbers in well under a millisecond.
        self._coef_t: FloatArray = np.ascontiguousarray(np.asarray(classifier.coef_, dtype=np.float64).T)
        self._intercept: FloatArray = np.asarray(classifier.intercept_, dtype=np.float64)

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    def features(self, texts: Sequence[str]) -> Any:
        """The model's own feature map: texts to their sparse hashed n-gram matrix."""
        return self.vectorizer.transform(texts)

    def predict_proba(self, texts: Sequence[str]) -> FloatArray:
        if len(texts) == 0:
            return np.zeros((0, len(self._labels)))
        from scipy.special import expit

        scores = np.asarray(self.features(texts) @ self._coef_t) + self._intercept
        positive: FloatArray = expit(scores)
        if positive.shape[1] == 1:  # two classes: one column, the second class's
            proba = np.hstack([1.0 - positive, positive])
        else:  # one-vs-rest, normalised as scikit-learn's predict_proba does
            proba = positive / positive.sum(axis=1, keepdims=True)
        return spread(proba, self._columns, len(self._labels))

    def predict_one(self, text: str) -> tuple[str, dict[str, float]]:
        row = self.predict_proba([text])[0]
        probabilities = {label: float(p) for label, p in zip(self._labels, row, strict=True)}
        return max(probabilities, key=probabilities.__getitem__), probabilities


def hashing_vectorizer(hashing: Mapping[str, int]) -> HashingVectorizer:
    """Word n-grams (1 to ``ngram_max``) hashed into ``n_features`` columns, each row of unit L2
    norm: a feature map with nothing fitted, so no training row shapes it."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        n_features=hashing["n_features"], ngram_range=(1, hashing["ngram_max"]), alternate_sign=False, norm="l2"
    )


class IncrementalFamily:
    key = "incremental"
    summary = "SGD on hashed n-grams, updated from the previous version with a replay buffer (sub-second)."
    format_version = 1
    task = "classification"
    trainable = True

    def library_versions(self) -> dict[str, str]:
        import sklearn

        return {"scikit-learn": sklearn.__version__}

    def parameters(self) -> tuple[ParamSpec, ...]:
        from learnloop.families.param_models import IncrementalParams, describe

        return describe(IncrementalParams)

    def resolve_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        from learnloop.families.param_models import IncrementalParams, resolve

        return resolve(IncrementalParams, self.key, params)

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
    ) -> IncrementalPredictor:
        p = self.resolve_params(params)
        hashing = _hashing(p)
        weights = [1.0] * len(texts) if sample_weight is None else [float(w) for w in sample_weight]
        rng = np.random.default_rng(seed)
        if previous is not None and self.continues(previous, labels, params):
            assert isinstance(previous, IncrementalPredictor)
            return _update(previous, texts, labels, weights, label_set, p, rng)
        if len(set(labels)) < 2:
            raise InsufficientDataError(f"training needs at least two distinct labels, got {sorted(set(labels))}")
        from sklearn.linear_model import SGDClassifier

        classifier = SGDClassifier(loss="log_loss", alpha=p["alpha"], random_state=seed)
        classes = np.array(sorted(set(labels)), dtype=object)
        _passes(classifier, hashing_vectorizer(hashing), list(texts), list(labels), weights, p["epochs"], classes, rng)
        replay = _resample(Replay(), list(texts), list(labels), weights, p["replay_size"], rng)
        return IncrementalPredictor(classifier, label_set, hashing, frozenset(map(text_key, texts)), replay)

    def continues(self, previous: Predictor, labels: Sequence[str], params: Mapping[str, Any]) -> bool:
        """An update, not a fit from scratch: ``previous`` is of this family, with the same
        hashing, and has seen every one of ``labels``."""
        return (
            isinstance(previous, IncrementalPredictor)
            and previous.hashing == _hashing(self.resolve_params(params))
            and set(labels) <= {str(c) for c in previous.classifier.classes_}
        )

    def save(self, predictor: Any, directory: Path) -> None:
        if not isinstance(predictor, IncrementalPredictor):
            raise ArtifactError(f"{self.key} cannot save a {type(predictor).__name__}")
        import joblib

        directory.mkdir(parents=True, exist_ok=True)
        payload = {
            "classifier": predictor.classifier,
            "labels": list(predictor.labels),
            "hashing": predictor.hashing,
            "replay": [list(predictor.replay.texts), list(predictor.replay.labels), list(predictor.replay.weights)],
        }
        joblib.dump(payload, directory / _MODEL, compress=3)
        np.save(directory / _SEEN, keys_to_array(sorted(predictor.seen)), allow_pickle=False)

    def load(self, directory: Path) -> IncrementalPredictor:
        import joblib

        path = directory / _MODEL
        try:
            payload = joblib.load(path)
            seen = frozenset(keys_from_array(np.load(directory / _SEEN, allow_pickle=False)))
            replay = Replay(*(tuple(column) for column in payload["replay"]))
            return IncrementalPredictor(payload["classifier"], payload["labels"], payload["hashing"], seen, replay)
        except FileNotFoundError as exc:
            raise ArtifactError(f"artifact file missing: {exc.filename or path}") from exc
        except Exception as exc:  # unpickling garbage raises many kinds of errors
            raise ArtifactError(f"artifact {directory} is corrupt: {type(exc).__name__}: {exc}") from exc


def _hashing(p: Mapping[str, Any]) -> dict[str, int]:
    return {"n_features": p["n_features"], "ngram_max": p["ngram_max"]}


def _update(
    previous: IncrementalPredictor,
    texts: Sequence[str],
    labels: Sequence[str],
    weights: list[float],
    label_set: Sequence[str],
    p: Mapping[str, Any],
    rng: np.random.Generator,
) -> IncrementalPredictor:
    """``previous`` continued on the examples it never saw, with replayed earlier ones."""
    new = [i for i, text in enumerate(texts) if text_key(text) not in previous.seen]
    classifier = copy.deepcopy(previous.classifier)
    schedule = classifier.learning_rate, classifier.eta0
    classifier.set_params(learning_rate="constant", eta0=p["update_step"])
    new_texts, new_labels, new_weights = [texts[i] for i in new], [labels[i] for i in new], [weights[i] for i in new]
    if new:
        old = previous.replay
        take = min(len(old), round(p["replay_ratio"] * len(new)))
        picked = sorted(rng.choice(len(old), size=take, replace=False).tolist()) if take else []
        _passes(
            classifier,
            previous.vectorizer,
            new_texts + [old.texts[i] for i in picked],
            new_labels + [old.labels[i] for i in picked],
            new_weights + [old.weights[i] for i in picked],
            p["update_epochs"],
            None,
            rng,
        )
    classifier.set_params(learning_rate=schedule[0], eta0=schedule[1])
    replay = _resample(previous.replay, new_texts, new_labels, new_weights, p["replay_size"], rng)
    seen = previous.seen | frozenset(text_key(t) for t in new_texts)
    return IncrementalPredictor(classifier, label_set, previous.hashing, seen, replay)


def _passes(
    classifier: SGDClassifier,
    vectorizer: HashingVectorizer,
    texts: list[str],
    labels: list[str],
    weights: list[float],
    epochs: int,
    classes: np.ndarray[Any, Any] | None,
    rng: np.random.Generator,
) -> None:
    """``epochs`` passes of ``partial_fit`` over the examples, each in a fresh shuffled order."""
    from threadpoolctl import threadpool_limits

    features = vectorizer.transform(texts)
    y = np.asarray(labels, dtype=object)
    w = np.asarray(weights, dtype=np.float64)
    with threadpool_limits(limits=1):
        for _ in range(epochs):
            order = rng.permutation(len(texts))
            classifier.partial_fit(features[order], y[order], classes=classes, sample_weight=w[order])
            classes = None  # given on the first call only


def _resample(
    replay: Replay, texts: list[str], labels: list[str], weights: list[float], size: int, rng: np.random.Generator
) -> Replay:
    """A uniform sample of at most ``size`` examples from the buffer and the new ones."""
    all_texts = [*replay.texts, *texts]
    all_labels = [*replay.labels, *labels]
    all_weights = [*replay.weights, *weights]
    keep: list[int] = list(range(len(all_texts)))
    if len(all_texts) > size:
        keep = sorted(rng.choice(len(all_texts), size=size, replace=False).tolist())
    return Replay(
        tuple(all_texts[i] for i in keep), tuple(all_labels[i] for i in keep), tuple(all_weights[i] for i in keep)
    )
