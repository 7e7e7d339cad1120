"""The golden set: a fixed, stratified hold-out of the bootstrap data."""

from __future__ import annotations

import random

from learnloop.curation.dedup import normalize_text


def split_golden(
    rows: list[tuple[str, str]], fraction: float, seed: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Hold out a golden set, stratified by label; duplicates of a text stay on one side."""
    train, golden = golden_indices(rows, fraction, seed)
    return [rows[i] for i in train], [rows[i] for i in golden]


def golden_indices(rows: list[tuple[str, str]], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """``split_golden`` as the indices of ``rows`` on each side, in the order it returns them
    (for what travels beside a row, such as its metadata)."""
    by_label: dict[str, list[str]] = {}
    groups: dict[str, list[int]] = {}
    for i, (text, label) in enumerate(rows):
        key = normalize_text(text)
        if key not in groups:
            by_label.setdefault(label, []).append(key)
        groups.setdefault(key, []).append(i)
    rng = random.Random(seed)
    golden_keys: set[str] = set()
    for keys in by_label.values():
        rng.shuffle(keys)
        golden_keys.update(keys[: round(len(keys) * fraction)])
    train = [i for key, group in groups.items() if key not in golden_keys for i in group]
    golden = [i for key, group in groups.items() if key in golden_keys for i in group]
    return train, golden
