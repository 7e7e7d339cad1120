"""Which patterns are new: not reported before for the model. Pure logic, no I/O.

A cluster is a new pattern when its terms share less than ``NEW_BELOW`` of their union
(Jaccard) with every cluster reported before: clusters are refitted at every analysis, so the
same trouble comes back with a slightly different set of words, and half of them in common is
the same pattern. A slice is new when its key (``term=delay``) was never reported. Comparing
with everything reported (the ``error_pattern`` events) makes a check idempotent: run twice on
the same feedback, the second finds nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

NEW_BELOW = 0.5


def overlap(a: Iterable[str], b: Iterable[str]) -> float:
    """Jaccard overlap of two term sets (0 when both are empty)."""
    left, right = set(a), set(b)
    union = left | right
    return len(left & right) / len(union) if union else 0.0


def is_new_cluster(terms: Sequence[str], reported: Iterable[Sequence[str]]) -> bool:
    return bool(terms) and all(overlap(terms, before) < NEW_BELOW for before in reported)


class Known:
    """The patterns reported before (the data of their events: ``type`` cluster with
    ``terms``, or slice with ``key``), and which of the ones found now are new."""

    def __init__(self, reported: Iterable[Mapping[str, Any]]) -> None:
        self.clusters: list[list[str]] = []
        self.slices: set[str] = set()
        for data in reported:
            self._remember(data)

    def _remember(self, data: Mapping[str, Any]) -> None:
        if data.get("type") == "cluster":
            self.clusters.append(list(data.get("terms") or []))
        elif data.get("type") == "slice":
            self.slices.add(str(data.get("key")))

    def admit(self, data: Mapping[str, Any]) -> bool:
        """Whether ``data`` is a new pattern; a new one is remembered (so two alike found in
        one analysis are reported once)."""
        if data["type"] == "cluster":
            new = is_new_cluster(data["terms"], self.clusters)
        else:
            new = data["key"] not in self.slices
        if new:
            self._remember(data)
        return new
