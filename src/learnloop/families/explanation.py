"""Why a classifier answered what it did: the terms of a text that pushed each label, and how much.

Two methods, named in every ``Explanation`` (``method``):

* ``linear`` (``tfidf-logreg``, ``incremental``): exact. The model's score of a label is a sum
  over the text's features, ``score = intercept + sum_j x_j * coef_j`` (``x_j`` the term's
  TF-IDF or hashed, L2-normalised count), so each term's share ``x_j * coef_j`` is its
  contribution, and the contributions plus the intercept *are* the decision function.
  A label's score is the logit the model turns into probabilities: with two labels, the
  log-odds of that label against the other (the second label's score is the first's negated);
  with more, ``tfidf-logreg``'s softmax input and ``incremental``'s one-vs-rest log-odds.
  Hashed features can share a column between terms: a column's contribution is split among
  the text's terms in it in proportion to their counts (rare at 2**20 columns).
* ``occlusion`` (every other classifier, ``embedding-logreg`` today): an approximation. Each
  word (at most ``MAX_OCCLUDED``) is taken out of the text in turn and the text scored again;
  a word's contribution to a label is how much that label's probability falls without it. It
  is model-agnostic and honest about interactions it misses (two words that only matter
  together each look unimportant). SHAP's sampling explainers would cost hundreds of model
  calls an answer on a sentence encoder; occlusion costs one batch of ``words + 1`` texts.

For highlighting, each term's contribution to the answered label is spread over the words of
the text that make it (a bigram's half to each of its two words; a character n-gram's to the
word it lies in): the ``tokens`` carry character offsets into the text as given. Where the
analyzer's terms cannot be matched to the text's words (a custom analyzer), ``tokens`` is
empty and the terms still hold.

``term_weights`` gives a linear version's weights per label and term (the coefficients; for
hashed features the columns named by the terms of the version's replay buffer), ``top_terms``
the strongest, and ``weight_changes`` what moved between two versions.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from learnloop.errors import NotSupportedError
from learnloop.families.base import FloatArray, Predictor
from learnloop.families.incremental import IncrementalPredictor
from learnloop.families.tfidf_logreg import TfidfLogRegPredictor

LINEAR = "linear"
OCCLUSION = "occlusion"
MAX_OCCLUDED = 64  # words taken out one at a time; the rest of a long text counts as context only
_WORD = re.compile(r"\w+")
_NON_SPACE = re.compile(r"\S+")


@dataclass(frozen=True)
class TermContribution:
    """One term of the text (a word, an n-gram, a character n-gram) and what it added to each
    label's score (``linear``) or probability (``occlusion``)."""

    term: str
    value: float | None  # its feature value in this text (``linear``); None for occlusion
    contributions: dict[str, float]


@dataclass(frozen=True)
class TokenSpan:
    """A word of the text, by character offsets, with what it added to the answered label."""

    start: int
    end: int
    text: str
    contribution: float


@dataclass(frozen=True)
class Explanation:
    method: str  # LINEAR or OCCLUSION
    target: str  # what contributions add to: "logit" (a label's score) or "probability"
    label: str  # the answered label
    probabilities: dict[str, float]
    scores: dict[str, float] | None  # linear: each label's decision function (the logit)
    intercept: dict[str, float] | None  # linear: each label's score of an empty text
    terms: list[TermContribution]  # strongest (for the answered label) first
    tokens: list[TokenSpan]  # the text's words in order, for highlighting
    truncated: bool = False  # occlusion: the text had more than MAX_OCCLUDED words


# -- the linear view of a predictor -----------------------------------------------------------


@dataclass(frozen=True)
class _Linear:
    """What the linear families share: features of a text, coefficients, an analyzer."""

    classes: tuple[str, ...]  # the classifier's classes (its coefficient rows' order)
    coef: Any  # (rows, columns): one row for two classes, else one per class
    intercept: FloatArray
    features: Callable[[Sequence[str]], Any]  # texts -> sparse (n, columns)
    analyzer: Callable[[str], list[str]]
    columns_of: Callable[[Sequence[str]], list[int | None]]  # terms -> their column (None: unknown)
    vectorizer: Any

    def per_label(self, row_values: FloatArray) -> dict[str, float]:
        """Per-row values (one per coefficient row) as per-label values: two classes share one
        row, the second class's, and the first's is its negation."""
        if len(self.classes) == 2 and len(row_values) == 1:
            v = float(row_values[0])
            return {self.classes[0]: -v, self.classes[1]: v}
        return {label: float(v) for label, v in zip(self.classes, row_values, strict=True)}


def _linear(predictor: Predictor) -> _Linear | None:
    columns_of: Callable[[Sequence[str]], list[int | None]]
    if isinstance(predictor, TfidfLogRegPredictor):
        vocab: dict[str, int] = predictor.vectorizer.vocabulary_
        columns_of = lambda terms: [vocab.get(t) for t in terms]  # noqa: E731
    elif isinstance(predictor, IncrementalPredictor):
        hasher = _hasher(predictor.vectorizer.n_features)
        columns_of = lambda terms: _hashed_columns(hasher, terms)  # noqa: E731
    else:
        return None
    classifier, vectorizer = predictor.classifier, predictor.vectorizer
    return _Linear(
        classes=tuple(str(c) for c in classifier.classes_),
        coef=np.asarray(classifier.coef_, dtype=np.float64),
        intercept=np.asarray(classifier.intercept_, dtype=np.float64),
        features=predictor.features,
        analyzer=vectorizer.build_analyzer(),
        columns_of=columns_of,
        vectorizer=vectorizer,
    )


def _hasher(n_features: int) -> Any:
    """The ``FeatureHasher`` a ``HashingVectorizer(alternate_sign=False)`` hashes terms with."""
    from sklearn.feature_extraction import FeatureHasher

    return FeatureHasher(n_features=n_features, input_type="string", alternate_sign=False)


def _hashed_columns(hasher: Any, terms: Sequence[str]) -> list[int | None]:
    if not terms:
        return []
    matrix = hasher.transform([[t] for t in terms]).tocsr()
    return [int(matrix.indices[matrix.indptr[i]]) for i in range(len(terms))]


def is_linear(predictor: Predictor) -> bool:
    return _linear(predictor) is not None


# -- explaining one text ----------------------------------------------------------------------


def explain(predictor: Predictor, text: str) -> Explanation:
    """The answer ``predictor`` gives ``text`` and the terms behind it: exact for a linear
    family, by occlusion for any other."""
    linear = _linear(predictor)
    if linear is not None:
        return _explain_linear(predictor, linear, text)
    return explain_by_occlusion(predictor, text)


def _explain_linear(predictor: Predictor, lin: _Linear, text: str) -> Explanation:
    label, probabilities = predictor.predict_one(text)
    row = lin.features([text]).tocsr()
    columns, values = row.indices, row.data
    per_column = values[:, None] * lin.coef[:, columns].T  # (present columns, rows)
    scores = lin.per_label(lin.intercept + per_column.sum(axis=0))
    counts = Counter(lin.analyzer(text))
    terms_in = list(counts)
    by_column: dict[int, list[str]] = defaultdict(list)
    for term, column in zip(terms_in, lin.columns_of(terms_in), strict=True):
        if column is not None:
            by_column[column].append(term)
    terms: list[TermContribution] = []
    for k, column in enumerate(columns.tolist()):
        names = by_column.get(column, [])
        total = sum(counts[t] for t in names)
        for term in names:  # one term per column, except hashed collisions
            share = counts[term] / total
            terms.append(TermContribution(term, float(values[k]) * share, lin.per_label(per_column[k] * share)))
    target = label if label in scores else max(scores, key=scores.__getitem__)
    terms.sort(key=lambda t: -abs(t.contributions[target]))
    return Explanation(
        method=LINEAR,
        target="logit",
        label=label,
        probabilities=probabilities,
        scores=scores,
        intercept=lin.per_label(lin.intercept),
        terms=terms,
        tokens=_spread(lin, text, {t.term: t.contributions[target] for t in terms}),
    )


def _units(lin: _Linear, text: str) -> tuple[list[tuple[int, int]], list[tuple[str, tuple[int, ...]]]] | None:
    """The text's words (character spans) and every term occurrence the analyzer makes, with
    the words it lies on; None when they do not reproduce the analyzer's terms."""
    v = lin.vectorizer
    analyzer = getattr(v, "analyzer", "word")
    lowercase = bool(getattr(v, "lowercase", True))
    lowered = text.lower() if lowercase else text
    source = lowered if len(lowered) == len(text) else text  # offsets hold in both
    occurrences: list[tuple[str, tuple[int, ...]]] = []
    if analyzer == "word":
        pattern = re.compile(v.token_pattern)
        found = list(pattern.finditer(source))
        spans = [m.span() for m in found]
        words = [m.group().lower() if lowercase else m.group() for m in found]
        low, high = v.ngram_range
        for n in range(low, high + 1):
            for i in range(len(words) - n + 1):
                occurrences.append((" ".join(words[i : i + n]), tuple(range(i, i + n))))
    elif analyzer == "char_wb":
        found = list(_NON_SPACE.finditer(source))
        spans = [m.span() for m in found]
        for i, m in enumerate(found):
            occurrences.extend((term, (i,)) for term in lin.analyzer(m.group()))
    else:
        return None
    if Counter(term for term, _ in occurrences) != Counter(lin.analyzer(text)):
        return None
    return spans, occurrences


def _spread(lin: _Linear, text: str, contribution: dict[str, float]) -> list[TokenSpan]:
    """Each term's contribution shared among its occurrences and, within one, its words."""
    found = _units(lin, text)
    if found is None:
        return []
    spans, occurrences = found
    seen = Counter(term for term, _ in occurrences)
    per_word = [0.0] * len(spans)
    for term, words in occurrences:
        c = contribution.get(term)
        if c:
            for w in words:
                per_word[w] += c / seen[term] / len(words)
    return [TokenSpan(a, b, text[a:b], per_word[i]) for i, (a, b) in enumerate(spans)]


def explain_by_occlusion(predictor: Predictor, text: str) -> Explanation:
    """Leave-one-word-out: each word's contribution to a label is the label's probability with
    the whole text minus its probability with that word taken out."""
    words = list(_WORD.finditer(text))
    occluded = words[:MAX_OCCLUDED]
    variants = [text] + [text[: m.start()] + text[m.end() :] for m in occluded]
    proba = np.asarray(predictor.predict_proba(variants), dtype=np.float64)
    labels = predictor.labels
    full = proba[0]
    label = labels[int(full.argmax())]
    target = labels.index(label)
    drops = full[None, :] - proba[1:]
    by_term: dict[str, FloatArray] = {}
    for m, drop in zip(occluded, drops, strict=True):
        key = m.group().lower()
        by_term[key] = by_term.get(key, np.zeros(len(labels))) + drop
    terms = [
        TermContribution(term, None, {lab: float(v) for lab, v in zip(labels, values, strict=True)})
        for term, values in by_term.items()
    ]
    terms.sort(key=lambda t: -abs(t.contributions[label]))
    tokens = [
        TokenSpan(m.start(), m.end(), m.group(), float(drops[i, target]) if i < len(occluded) else 0.0)
        for i, m in enumerate(words)
    ]
    return Explanation(
        method=OCCLUSION,
        target="probability",
        label=label,
        probabilities={lab: float(p) for lab, p in zip(labels, full, strict=True)},
        scores=None,
        intercept=None,
        terms=terms,
        tokens=tokens,
        truncated=len(words) > MAX_OCCLUDED,
    )


# -- a version's weights, and what changed between two ----------------------------------------


@dataclass(frozen=True)
class TermWeights:
    """A linear version's weight of each term for each label (its coefficient on the term's
    feature; positive pushes towards the label)."""

    labels: tuple[str, ...]
    terms: list[str]
    weights: FloatArray  # (terms, labels)

    def of(self, term: str) -> dict[str, float] | None:
        index = self._index().get(term)
        return None if index is None else dict(zip(self.labels, self.weights[index].tolist(), strict=True))

    def _index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.terms)}


@dataclass(frozen=True)
class TermWeight:
    term: str
    weight: float


@dataclass(frozen=True)
class WeightChange:
    term: str
    before: float | None  # None: the first version has no such term
    after: float | None  # None: the second version has no such term

    @property
    def change(self) -> float:
        return (self.after or 0.0) - (self.before or 0.0)


def term_weights(predictor: Predictor) -> TermWeights:
    """Every term's weight per label; refused for a model whose features are not terms."""
    lin = _linear(predictor)
    if lin is None:
        raise NotSupportedError(
            f"a {type(predictor).__name__} weighs no terms (its features are not words): "
            "explain its answers one by one instead (occlusion)",
            field="version",
        )
    if isinstance(predictor, TfidfLogRegPredictor):
        vocab = predictor.vectorizer.vocabulary_
        names: dict[int, str] = {column: term for term, column in vocab.items()}
    else:
        assert isinstance(predictor, IncrementalPredictor)
        names = _named_columns(lin, predictor.replay.texts)
    columns = sorted(names)
    rows = lin.coef[:, columns]  # (coefficient rows, terms)
    if len(lin.classes) == 2 and rows.shape[0] == 1:  # as ``per_label``: the first label's is negated
        rows = np.vstack([-rows[0], rows[0]])
    return TermWeights(lin.classes, [names[c] for c in columns], np.ascontiguousarray(rows.T))


def _named_columns(lin: _Linear, texts: Iterable[str]) -> dict[int, str]:
    """Hashed columns named by the terms the texts make (the replay buffer's): a column two
    terms share is named by both, ``a | b``."""
    terms = sorted({term for text in texts for term in lin.analyzer(text)})
    by_column: dict[int, list[str]] = defaultdict(list)
    for term, column in zip(terms, lin.columns_of(terms), strict=True):
        if column is not None:
            by_column[column].append(term)
    return {column: " | ".join(names) for column, names in by_column.items()}


def top_terms(weights: TermWeights, n: int) -> dict[str, list[TermWeight]]:
    """Per label, the ``n`` terms that push hardest towards it."""
    out: dict[str, list[TermWeight]] = {}
    for j, label in enumerate(weights.labels):
        column = weights.weights[:, j]
        best = np.argsort(-column, kind="stable")[:n]
        out[label] = [TermWeight(weights.terms[i], float(column[i])) for i in best if column[i] > 0]
    return out


def weight_changes(a: TermWeights, b: TermWeights, n: int) -> dict[str, tuple[list[WeightChange], list[WeightChange]]]:
    """Per label both versions know, the ``n`` terms whose weight rose most from ``a`` to ``b``
    and the ``n`` that fell most (a term one version lacks weighs 0 there)."""
    terms = sorted(set(a.terms) | set(b.terms))
    out: dict[str, tuple[list[WeightChange], list[WeightChange]]] = {}
    aligned_a, aligned_b = _aligned(a, terms), _aligned(b, terms)  # NaN where a version lacks the term
    for label in [lab for lab in a.labels if lab in b.labels]:
        before = aligned_a[:, a.labels.index(label)]
        after = aligned_b[:, b.labels.index(label)]
        deltas = np.nan_to_num(after) - np.nan_to_num(before)
        order = np.argsort(-deltas, kind="stable")

        def change(i: int, before: FloatArray = before, after: FloatArray = after) -> WeightChange:
            return WeightChange(terms[i], _number(before[i]), _number(after[i]))

        gained = [change(i) for i in order[:n] if deltas[i] > 0]
        lost = [change(i) for i in order[::-1][:n] if deltas[i] < 0]
        out[label] = (gained, lost)
    return out


def _aligned(weights: TermWeights, terms: list[str]) -> FloatArray:
    """``weights`` on the rows of ``terms`` (sorted), NaN for a term it lacks."""
    out = np.full((len(terms), len(weights.labels)), np.nan)
    index = {t: i for i, t in enumerate(terms)}
    out[[index[t] for t in weights.terms]] = weights.weights
    return out


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
