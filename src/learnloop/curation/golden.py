"""The golden set: a fixed, stratified hold-out of the bootstrap data."""

from __future__ import annotations

import random

from learnloop.curation.dedup import normalize_text


def split_golden(
    rows: list[tuple[str, str]], fraction: float, seed: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Hold out a golden set, stratified by label; duplicates of a text stay on one side."""
    by_label: dict[str, list[str]] = {}
    groups: dict[str, list[tuple[str, str]]] = {}
    for text, label in rows:
        key = normalize_text(text)
        if key not in groups:
            by_label.setdefault(label, []).append(key)
        groups.setdefault(key, []).append((text, label))
    rng = random.Random(seed)
    golden_keys: set[str] = set()
    for keys in by_label.values():
        rng.shuffle(keys)
        golden_keys.update(keys[: round(len(keys) * fraction)])
    train = [row for key, group in groups.items() if key not in golden_keys for row in group]
    golden = [row for key, group in groups.items() if key in golden_keys for row in group]
    return train, golden
