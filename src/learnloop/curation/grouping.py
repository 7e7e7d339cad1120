"""Near-duplicate groups of a list of texts that grows at its end, kept so that grouping it with
more texts only does the new texts' work. Pure, numpy and scipy only.

``Grouping.extended(texts, more)`` gives exactly the groups ``dedup.group_ids([*texts, *more])``
gives (that function is ``Grouping.of``), because every step is decided per new text:

* exact duplicates share a *unique* (their ``dedup_key``, kept as a 16-byte BLAKE2b digest);
* each unique has one MinHash signature, cut into LSH bands (``dedup.lsh_bands``); two uniques
  become a candidate pair when a band of theirs is equal. Within a bucket (the uniques sharing
  one band), in index order, the first ``STAR_ABOVE`` members are paired with one another and
  every later member with the first only (a bucket of thousands of loosely similar texts stays
  linear). So the pairs among a bucket's first members never change when later members join,
  and extending a grouping adds only pairs with a new unique in them;
* a candidate is confirmed on its MinHash estimate, then its exact Jaccard (``dedup``), and the
  groups are the connected components of the confirmed pairs.

A retrain groups the model's golden and bootstrap rows, which do not change between retrains,
once (``to_bytes`` keeps it between processes), and only its feedback each time. ``key`` names
the texts a grouping holds and how they were grouped; ``extended`` refuses texts that do not
match it, so a grouping kept from other rows (one erased since) is never applied.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from learnloop.curation.minhash import Unit, dedup_key, lsh_bands, shingle_hashes, signatures

FORMAT = 1  # bumped when what a stored grouping means changes (it is then recomputed)
STAR_ABOVE = 40  # bucket members after this many are paired with the first member only
ESTIMATE_SLACK = 0.15
_MIX = np.uint64(0x9E3779B97F4A7C15)
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class GroupingSettings:
    threshold: float = 0.8
    shingle: int = 5
    unit: Unit = "char"
    num_perm: int = 128
    seed: int = 0

    @property
    def lsh(self) -> bool:
        return self.threshold < 1.0  # a threshold of 1: exact duplicates only

    def bands(self) -> tuple[int, int]:
        return lsh_bands(self.threshold, self.num_perm) if self.lsh else (0, 0)

    def describe(self) -> str:
        return f"{FORMAT}:{self.threshold!r}:{self.shingle}:{self.unit}:{self.num_perm}:{self.seed}"


def content_key(texts: Sequence[str], settings: GroupingSettings) -> str:
    """What a grouping of ``texts`` under ``settings`` is named by: every text, in order."""
    digest = hashlib.sha256(settings.describe().encode())
    for text in texts:
        encoded = text.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


@dataclass(frozen=True)
class Grouping:
    settings: GroupingSettings
    key: str  # content_key of the texts grouped
    unique_of: I64  # per text: its unique (exact duplicates share one), numbered by first occurrence
    first_text: I64  # per unique: the index of its first text
    digests: npt.NDArray[np.bytes_]  # per unique: BLAKE2b-128 of its dedup_key
    band_keys: npt.NDArray[np.uint64]  # per unique: one key per LSH band
    root: I64  # per unique: the smallest unique of its group

    @classmethod
    def empty(cls, settings: GroupingSettings) -> Grouping:
        bands, _ = settings.bands()
        return cls(
            settings,
            content_key([], settings),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype="S16"),
            np.zeros((0, bands), dtype=np.uint64),
            np.zeros(0, dtype=np.int64),
        )

    @classmethod
    def of(cls, texts: Sequence[str], settings: GroupingSettings) -> Grouping:
        return cls.empty(settings).extended([], texts)

    @property
    def n_texts(self) -> int:
        return len(self.unique_of)

    def ids(self) -> list[int]:
        """Per text, the id of its group: the smallest index of a text in the group."""
        ids: list[int] = self.first_text[self.root[self.unique_of]].tolist()
        return ids

    def extended(self, texts: Sequence[str], more: Sequence[str]) -> Grouping:
        """The grouping of ``[*texts, *more]``; ``texts`` must be the texts grouped here."""
        if len(texts) != self.n_texts or content_key(texts, self.settings) != self.key:
            raise ValueError("these texts are not the ones this grouping was made of")
        s = self.settings
        index = {digest: u for u, digest in enumerate(self.digests.tolist())}
        new_norms: list[str] = []
        new_digests: list[bytes] = []
        new_first: list[int] = []
        unique_of = np.empty(len(more), dtype=np.int64)
        for i, text in enumerate(more):
            norm = dedup_key(text)
            digest = hashlib.blake2b(norm.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            u = index.get(digest)
            if u is None:
                u = index[digest] = len(index)
                new_norms.append(norm)
                new_digests.append(digest)
                new_first.append(self.n_texts + i)
            unique_of[i] = u
        old = len(self.digests)
        total = old + len(new_norms)
        bands, rows = s.bands()
        band_keys = np.zeros((len(new_norms), bands), dtype=np.uint64)
        edges = np.zeros((0, 2), dtype=np.int64)
        if s.lsh and new_norms:
            hashes, offsets = shingle_hashes(new_norms, s.shingle, s.unit)
            band_keys = _band_keys(signatures(hashes, offsets, s.num_perm, s.seed), bands, rows)
            keys = np.concatenate([self.band_keys, band_keys])
            pairs = _pairs_with_new(keys, old)
            edges = self._confirmed(pairs, texts, new_norms)
        root = _components(np.concatenate([self.root, np.arange(old, total)]), edges)
        return Grouping(
            s,
            content_key([*texts, *more], s),
            np.concatenate([self.unique_of, unique_of]),
            np.concatenate([self.first_text, np.asarray(new_first, dtype=np.int64)]),
            np.concatenate([self.digests, np.asarray(new_digests, dtype="S16")]),
            np.concatenate([self.band_keys, band_keys]),
            root,
        )

    def _confirmed(self, pairs: I64, texts: Sequence[str], new_norms: list[str]) -> I64:
        """The candidate pairs whose Jaccard reaches the threshold: MinHash estimate first
        (pairs estimated more than ``ESTIMATE_SLACK`` below it are dropped: a true pair is
        lost only when its estimate falls 3+ standard errors low), then exactly."""
        s = self.settings
        old = len(self.digests)
        if not len(pairs):
            return pairs
        involved = np.unique(pairs)
        norms = [dedup_key(texts[self.first_text[u]]) if u < old else new_norms[u - old] for u in involved.tolist()]
        hashes, offsets = shingle_hashes(norms, s.shingle, s.unit)
        sigs = signatures(hashes, offsets, s.num_perm, s.seed)
        at = np.searchsorted(involved, pairs)
        close = (sigs[at[:, 0]] == sigs[at[:, 1]]).mean(axis=1) >= s.threshold - ESTIMATE_SLACK
        ends = np.append(offsets[1:], len(hashes))
        sets: dict[int, set[int]] = {}

        def shingles(k: int) -> set[int]:
            if k not in sets:
                sets[k] = set(hashes[offsets[k] : ends[k]].tolist())
            return sets[k]

        confirmed = [
            pair
            for pair, (ka, kb) in zip(pairs[close].tolist(), at[close].tolist(), strict=True)
            if len(shingles(ka) & shingles(kb)) >= s.threshold * len(shingles(ka) | shingles(kb))
        ]
        return np.array(confirmed, dtype=np.int64).reshape(-1, 2)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            settings=np.asarray(self.settings.describe()),
            key=np.asarray(self.key),
            unique_of=self.unique_of,
            first_text=self.first_text,
            digests=self.digests,
            band_keys=self.band_keys,
            root=self.root,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, settings: GroupingSettings) -> Grouping | None:
        """The grouping stored in ``data`` if it was made under ``settings``, else None."""
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            if str(stored["settings"]) != settings.describe():
                return None
            return cls(
                settings,
                str(stored["key"]),
                stored["unique_of"],
                stored["first_text"],
                stored["digests"],
                stored["band_keys"],
                stored["root"],
            )


def _band_keys(sigs: npt.NDArray[np.uint32], bands: int, rows: int) -> npt.NDArray[np.uint64]:
    keys = np.zeros((len(sigs), bands), dtype=np.uint64)
    for band in range(bands):
        for col in range(rows):
            keys[:, band] = keys[:, band] * _MIX + sigs[:, band * rows + col].astype(np.uint64)
    return keys


def _pairs_with_new(keys: npt.NDArray[np.uint64], old: int) -> I64:
    """The candidate pairs (a < b) with a unique at or after ``old`` in them."""
    found: set[tuple[int, int]] = set()
    for band in range(keys.shape[1]):
        order = np.argsort(keys[:, band], kind="stable")  # a bucket's members in index order
        sorted_keys = keys[order, band]
        bounds = np.flatnonzero(np.diff(sorted_keys)) + 1
        starts = np.concatenate(([0], bounds))
        stops = np.concatenate((bounds, [len(order)]))
        newest = np.maximum.reduceat(order, starts) if len(order) else order
        busy = (stops - starts > 1) & (newest >= old)
        for start, stop in zip(starts[busy].tolist(), stops[busy].tolist(), strict=True):
            members = order[start:stop].tolist()
            for rank in range(len(members) - 1, 0, -1):
                b = members[rank]
                if b < old:
                    break  # the rest are old: their pairs were made when they joined
                if rank < STAR_ABOVE:
                    found.update((a, b) for a in members[:rank])
                else:
                    found.add((members[0], b))
    return np.array(sorted(found), dtype=np.int64).reshape(-1, 2)


def _components(root: I64, edges: I64) -> I64:
    """Per unique, the smallest unique of its group: the groups given by ``root`` (each unique
    its group's smallest), joined by ``edges``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(root)
    a = np.concatenate([np.arange(n), edges[:, 0]])
    b = np.concatenate([root, edges[:, 1]])
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    smallest = np.full(component.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(smallest, component, np.arange(n))
    found: I64 = smallest[component]
    return found
