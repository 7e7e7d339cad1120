"""Term counts of texts kept by text key: what ``tfidf-logreg`` saves beside a version (the
counts of the texts it was trained on), so that a retrain starting from it (``previous``)
tokenises only the texts that version had not seen. Counting is most of a TF-IDF fit (on
52,000 texts of ~130 characters: ~2.5 s of the analyzer and vocabulary building, against
~0.8 s for the logistic regression), and a model's bootstrap rows are counted in every retrain.

A text's counts depend on the text and the analyzer alone (``analysis``: analyzer and n-gram
range), so counts taken from here are the ones counting the text again gives; the columns are
the union of both term lists in sorted order, as ``CountVectorizer.fit`` on all the texts
orders them (terms of no text in the fit are columns with no counts, which the fit's
document-frequency rules drop). Saved without pickle: a ``.npz`` of arrays.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from learnloop.families.text_keys import keys_from_array, keys_to_array, text_key


@dataclass(frozen=True)
class TermCounts:
    analysis: str  # the analyzer and n-gram range the counts were made with (``analysis``)
    keys: list[bytes]  # per row: the text's key (``text_key`` salted with ``analysis``)
    counts: Any  # scipy CSR (rows, len(terms)), counts as float64
    terms: Any  # numpy object array of str, sorted: the columns

    def to_file(self, path: Path) -> None:
        encoded = [term.encode("utf-8", "surrogatepass") for term in self.terms.tolist()]
        ends = np.cumsum([len(b) for b in encoded], dtype=np.int64)
        data = self.counts.data
        np.savez(
            path,
            analysis=np.asarray(self.analysis),
            keys=keys_to_array(self.keys),
            indptr=self.counts.indptr.astype(np.int64),
            indices=self.counts.indices.astype(np.int32),
            data=data.astype(np.min_scalar_type(int(data.max()) if data.size else 0)),  # counts: uint8 mostly
            terms=np.frombuffer(b"".join(encoded), dtype=np.uint8),
            term_ends=ends,
        )

    @classmethod
    def from_file(cls, path: Path) -> TermCounts:
        from scipy.sparse import csr_matrix

        with np.load(path, allow_pickle=False) as stored:
            blob = stored["terms"].tobytes()
            ends = stored["term_ends"].tolist()
            starts = [0, *ends[:-1]]
            terms = np.array([blob[a:b].decode("utf-8", "surrogatepass") for a, b in zip(starts, ends, strict=True)])
            keys = keys_from_array(stored["keys"])
            counts = csr_matrix(
                (stored["data"].astype(np.float64), stored["indices"], stored["indptr"]),
                shape=(len(keys), len(terms)),
            )
            return cls(str(stored["analysis"]), keys, counts, terms.astype(object))


def analysis(p: dict[str, Any]) -> str:
    """What a text's term counts depend on besides the text (resolved ``tfidf-logreg`` params)."""
    return f"{p['analyzer']}:{p['ngram_min']}:{p['ngram_max']}"


def count_terms(texts: Sequence[str], p: dict[str, Any], known: TermCounts | None) -> tuple[Any, Any, TermCounts]:
    """The term counts of ``texts`` (CSR, float64, sorted indices), their columns' terms (sorted,
    as ``CountVectorizer.fit_transform(texts)`` gives them, plus any term of ``known`` in none
    of the texts) and the ``TermCounts`` to keep of them. A text ``known`` holds is not counted again."""
    from scipy.sparse import csr_matrix, vstack

    how = analysis(p)
    keys = [text_key(text, salt=how) for text in texts]
    row_of = {} if known is None or known.analysis != how else {k: i for i, k in enumerate(known.keys)}
    found = np.fromiter((row_of.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
    fresh = np.flatnonzero(found < 0)
    counts, terms = _counted([texts[i] for i in fresh.tolist()], p, some_known=len(fresh) < len(texts))
    if len(fresh) < len(texts):
        assert known is not None
        merged = np.array(sorted(set(terms.tolist()).union(known.terms.tolist())), dtype=object)
        column = {term: j for j, term in enumerate(merged.tolist())}
        old = _renamed(known.counts[found[found >= 0]], known.terms, column, len(merged))
        new = _renamed(counts, terms, column, len(merged))
        position = np.empty(len(texts), dtype=np.int64)  # each text's row in vstack([old, new])
        position[found >= 0] = np.arange(len(texts) - len(fresh))
        position[fresh] = np.arange(len(fresh)) + len(texts) - len(fresh)
        counts, terms = csr_matrix(vstack([old, new], format="csr")[position]), merged
    counts.sort_indices()
    first: dict[bytes, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    rows = np.fromiter(first.values(), dtype=np.int64, count=len(first))
    return counts, terms, TermCounts(how, list(first), counts[rows], terms)


def _counted(texts: list[str], p: dict[str, Any], *, some_known: bool) -> tuple[Any, Any]:
    """``CountVectorizer.fit_transform``'s counts and terms; where some texts' counts are known
    (``some_known``), texts with no term at all are counts of nothing, not an error."""
    from scipy.sparse import csr_matrix
    from sklearn.feature_extraction.text import CountVectorizer
    from threadpoolctl import threadpool_limits

    if some_known and not texts:
        return csr_matrix((0, 0), dtype=np.float64), np.array([], dtype=object)
    counter = CountVectorizer(analyzer=p["analyzer"], ngram_range=(p["ngram_min"], p["ngram_max"]), dtype=np.float64)
    try:
        with threadpool_limits(limits=1):  # one BLAS thread: measured 2.5x-17x faster than the default on 2 cores
            counts = counter.fit_transform(texts).tocsr()
    except ValueError:  # no text holds a term ("empty vocabulary")
        if not some_known:
            raise
        return csr_matrix((len(texts), 0), dtype=np.float64), np.array([], dtype=object)
    return counts, counter.get_feature_names_out()


def _renamed(counts: Any, terms: Any, column: dict[str, int], width: int) -> Any:
    """``counts`` with its columns (named by ``terms``) moved to ``column[term]`` of ``width``:
    an increasing map (both term lists are sorted), so each row's indices keep their order."""
    from scipy.sparse import csr_matrix

    moved = np.fromiter(map(column.__getitem__, terms.tolist()), dtype=np.int32, count=len(terms))
    return csr_matrix((counts.data, moved[counts.indices], counts.indptr), shape=(counts.shape[0], width))


# The counts of the last large batch scored (``batch_counts``): a retrain scores its golden set
# with the candidate, then with the champion; the second model reads the first one's counts.
SHARED_MIN_TEXTS = 1_000  # smaller batches (serving) are counted by the model itself, never kept
_last_batch: tuple[str, bytes, Any, Any] | None = None
_last_lock = threading.Lock()


def batch_counts(texts: Sequence[str], p: dict[str, Any]) -> tuple[Any, Any]:
    """The term counts of ``texts`` (CSR, float64, sorted indices; a text with no term is a row
    of nothing) and their columns' sorted terms; the last batch's are kept, so that another
    model with the same analyzer scoring the same texts does not count them again."""
    global _last_batch
    how = analysis(p)
    digest = hashlib.blake2b(how.encode(), digest_size=16)
    for text in texts:
        encoded = text.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    key = digest.digest()
    with _last_lock:
        last = _last_batch
    if last is not None and last[0] == how and last[1] == key:
        return last[2], last[3]
    counts, terms = _counted(list(texts), p, some_known=True)
    counts.sort_indices()
    with _last_lock:
        _last_batch = (how, key, counts, terms)
    return counts, terms
