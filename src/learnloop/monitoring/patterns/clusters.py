"""Clusters of the texts users corrected: TF-IDF, then LSA (a truncated SVD to 100
dimensions, rows normalised), then k-means. Pure logic, no I/O; scikit-learn is imported here
only, when an analysis runs.

Why this pipeline: it is scikit-learn's own recipe for clustering documents; short texts make
sparse, nearly orthogonal TF-IDF rows on which k-means in the raw space lands most texts in a
single cluster, and the SVD folds co-occurring words together first. MiniBatchKMeans fits
10,000 texts in about a second (``bench/patterns_bench.py``).

How many clusters: every k from 2 to 12 (and at most one cluster per ``MIN_CLUSTER`` texts)
is fitted on a seeded sample of at most 2,000 texts, and the k with the highest mean
silhouette (cosine) wins: the standard internal criterion for k-means, which needs no labels
and prefers clusters that are both tight and apart (on feedback with no structure every k
scores near 0, and the patterns say little; the silhouette is shown so a reader can tell).
Only the chosen k is then fitted on every text. A cluster's terms are the
words whose mean TF-IDF weight in it exceeds their mean over all corrected texts the most
(what sets it apart, not what every text says: no word is dropped for being common, since
the pattern that matters may be most of the corrections), and its examples the texts nearest its centre.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MIN_TEXTS = 20  # fewer corrected texts than this are not clustered
MIN_CLUSTER = 10  # texts per cluster, at least, when choosing k
MAX_K = 12
SILHOUETTE_SAMPLE = 2_000
COMPONENTS = 64
TERMS = 6
WORD = r"(?u)\b[^\W\d_][\w']+\b"  # words of two or more characters that start with a letter: no numbers, ids


@dataclass(frozen=True)
class Clustering:
    """The fitted clusters of ``n`` texts: each text's cluster, each cluster's distinctive
    terms and its members nearest the centre first; ``silhouette`` of the chosen ``k``, and
    the silhouette of every k tried."""

    k: int
    assignments: list[int]
    terms: list[list[str]]
    typical: list[list[int]]
    silhouette: float | None
    tried: dict[int, float]
    _model: Any  # the fitted vectoriser, SVD and k-means, to place other texts

    def assign(self, texts: Sequence[str]) -> list[int]:
        """The cluster whose centre is nearest each of ``texts`` (their *region*)."""
        if not texts:
            return []
        vectorizer, svd, kmeans = self._model
        return [int(c) for c in kmeans.predict(_embed(vectorizer.transform(texts), svd))]


def _embed(tfidf: Any, svd: Any) -> np.ndarray:
    from sklearn.preprocessing import normalize

    return normalize(svd.transform(tfidf))  # type: ignore[no-any-return]


def cluster_texts(texts: Sequence[str], *, seed: int = 0, k: int | None = None) -> Clustering | None:
    """Cluster ``texts`` (None when there are fewer than ``MIN_TEXTS`` or too few shared words
    to cluster); ``k`` fixes the number of clusters instead of choosing it."""
    if len(texts) < MIN_TEXTS:
        return None
    import numpy as np
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    vectorizer = TfidfVectorizer(
        stop_words="english",
        token_pattern=WORD,
        min_df=2,
        sublinear_tf=True,
        ngram_range=(1, 1),
        max_features=20_000,
    )
    try:
        tfidf = vectorizer.fit_transform(texts)
    except ValueError:  # no word in two texts (or every word a stop word)
        return None
    if tfidf.shape[1] < 3:
        return None
    svd = TruncatedSVD(n_components=min(COMPONENTS, tfidf.shape[1] - 1, len(texts) - 1), n_iter=4, random_state=seed)
    with np.errstate(invalid="ignore", divide="ignore"):  # identical texts: no variance to explain
        points = normalize(svd.fit_transform(tfidf))
    k, score, tried = _choose_k(points, seed) if k is None else (k, None, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # duplicates: an empty cluster is dropped below
        kmeans = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=2048).fit(points)
    if score is None:
        score = _silhouette(points, kmeans.labels_, seed)
    labels = kmeans.labels_
    distances = kmeans.transform(points)
    overall = np.asarray(tfidf.mean(axis=0)).ravel()
    vocabulary = vectorizer.get_feature_names_out()
    terms: list[list[str]] = []
    typical: list[list[int]] = []
    for c in range(kmeans.n_clusters):
        members = np.flatnonzero(labels == c)
        if not len(members):
            terms.append([])
            typical.append([])
            continue
        lift = np.asarray(tfidf[members].mean(axis=0)).ravel() - overall
        top = [int(i) for i in np.argsort(-lift)[:TERMS] if lift[i] > 0]
        terms.append([str(vocabulary[i]) for i in top])
        typical.append([int(i) for i in members[np.argsort(distances[members, c])]])
    return Clustering(
        k=int(kmeans.n_clusters),
        assignments=[int(c) for c in labels],
        terms=terms,
        typical=typical,
        silhouette=score,
        tried=tried,
        _model=(vectorizer, svd, kmeans),
    )


def _sample(n: int, seed: int) -> np.ndarray:
    import numpy as np

    return np.random.default_rng(seed).choice(n, size=min(SILHOUETTE_SAMPLE, n), replace=False)


def _silhouette(points: np.ndarray, labels: np.ndarray, seed: int) -> float | None:
    from sklearn.metrics import silhouette_score

    sample = _sample(len(points), seed)
    if len(set(labels[sample].tolist())) < 2:
        return None
    return float(silhouette_score(points[sample], labels[sample], metric="cosine"))


def _choose_k(points: np.ndarray, seed: int) -> tuple[int, float | None, dict[int, float]]:
    """The k of the best mean silhouette, each k fitted (full k-means) on one seeded sample of
    at most ``SILHOUETTE_SAMPLE`` texts: the choice costs the same for 10,000 texts as for
    2,000, and only the chosen k is fitted on every text."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    sample = points[_sample(len(points), seed)]
    tried: dict[int, float] = {}
    for k in range(2, max(2, min(MAX_K, len(points) // MIN_CLUSTER)) + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # fewer distinct texts than k
            labels = KMeans(n_clusters=k, random_state=seed, n_init=3).fit_predict(sample)
        if len(set(labels.tolist())) < k:
            break  # duplicates: no more distinct clusters to find
        score = _silhouette(sample, labels, seed)
        if score is not None:
            tried[k] = score
    if not tried:
        return 2, None, tried
    best = max(tried, key=lambda k: (tried[k], -k))
    return best, tried[best], tried
