"""The preference stream a generation replay plays: pairs read from a named data set or a
file, the too-long ones dropped, shuffled by the seed, at most ``limit``, and split into the
stream (sent to the loop) and a held-out slice (never sent, never trained on: where every
version and the baselines are scored at the end)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from learnloop.datasets.preference import (
    PreferenceData,
    PreferencePair,
    jsonl_lines,
    orca_dpo_sample_path,
    read_hh_rlhf,
    read_orca_dpo,
)
from learnloop.errors import DataError, ValidationError

# name: file in the preference data folder (``../shared/datasets/preference``; sources and
# licences in its README). ``orca-sample``: the 40 Orca pairs learnloop ships (MIT).
DATASET_FILES = {"hh": "hh-rlhf_harmless-base_test.jsonl.gz", "orca": "orca_dpo_pairs_validation.jsonl"}
SHIPPED_SAMPLE = "orca-sample"


@dataclass(frozen=True)
class PreferenceStream:
    name: str
    path: Path
    stream: list[PreferencePair]  # sent to the loop, in this order
    held_out: list[PreferencePair]  # never sent: the final scoring's pairs
    read: int  # pairs read
    skipped: int  # rows that made no pair
    too_long: int  # pairs over ``max_chars``

    def to_dict(self) -> dict[str, object]:
        return {
            "dataset": self.name,
            "path": str(self.path),
            "pairs_read": self.read,
            "rows_skipped": self.skipped,
            "too_long": self.too_long,
            "stream": len(self.stream),
            "held_out": len(self.held_out),
        }


def default_data_dir(start: Path | None = None) -> Path:
    """``shared/datasets/preference`` in the working directory or one of its parents (a checkout
    beside the shared folder, or a worktree one level deeper); the first candidate if none exists."""
    here = (start or Path.cwd()).resolve()
    candidates = [up / "shared" / "datasets" / "preference" for up in (here, *here.parents)]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def _is_orca_file(path: Path) -> bool:
    """Orca / Azure DPO rows have ``input``; HH-RLHF rows have ``chosen`` transcripts."""
    for line in jsonl_lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: the first row is not JSON ({exc.msg})") from exc
        return isinstance(row, dict) and "input" in row
    raise DataError(f"{path}: no rows")


def read_dataset(spec: str, data_dir: Path | None = None) -> tuple[str, Path, PreferenceData]:
    """``hh``, ``orca`` (in ``data_dir``), ``orca-sample`` (shipped) or a JSONL file in either format."""
    if spec == SHIPPED_SAMPLE:
        path = orca_dpo_sample_path()
        return spec, path, read_orca_dpo(path)
    if spec in DATASET_FILES:
        folder = data_dir or default_data_dir()
        path = folder / DATASET_FILES[spec]
        if not path.is_file():
            raise ValidationError(
                f"{DATASET_FILES[spec]} is not in {folder}: pass --data-dir (the folder holding the preference "
                f"data), a file path, or --dataset {SHIPPED_SAMPLE} (40 Orca pairs learnloop ships)",
                field="dataset",
            )
        return spec, path, (read_hh_rlhf if spec == "hh" else read_orca_dpo)(path)
    path = Path(spec)
    if not path.is_file():
        known = ", ".join([*DATASET_FILES, SHIPPED_SAMPLE])
        raise ValidationError(f"--dataset is {known} or a JSONL file; {spec} is neither", field="dataset")
    return path.stem, path, (read_orca_dpo if _is_orca_file(path) else read_hh_rlhf)(path)


def pair_chars(pair: PreferencePair) -> int:
    """Characters of the conversation and the longer answer: what a training row holds."""
    return sum(len(m["content"]) for m in pair.messages) + max(len(pair.chosen), len(pair.rejected))


def split_stream(
    pairs: Sequence[PreferencePair], *, limit: int | None, held_out_fraction: float, seed: int
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """Identical pairs made one, shuffled by ``seed``, at most ``limit``; the last
    ``held_out_fraction`` (rounded, at least one pair of each side when there are two) is held
    out, less any held-out pair with an answer the stream also gives to the same conversation
    (it would be scored on what the loop trained on)."""
    if not 0 < held_out_fraction < 1:
        raise ValidationError("the held-out fraction must be in (0, 1)", field="held_out")
    unique: dict[tuple[object, ...], PreferencePair] = {}
    for pair in pairs:
        unique.setdefault(_pair_key(pair), pair)
    order = list(unique.values())
    random.Random(seed).shuffle(order)
    order = order[:limit] if limit is not None else order
    if len(order) < 2:
        raise ValidationError(f"{len(order)} usable pairs: a replay needs at least 2", field="limit")
    held = min(max(round(held_out_fraction * len(order)), 1), len(order) - 1)
    stream, held_out = order[:-held], order[-held:]
    streamed = {key for p in stream for key in _answer_keys(p)}
    held_out = [p for p in held_out if streamed.isdisjoint(_answer_keys(p))]
    if not held_out:
        raise ValidationError("every held-out pair shares an answer with the stream: nothing left to judge on")
    return stream, held_out


def _conversation(pair: PreferencePair) -> tuple[tuple[str, str], ...]:
    return tuple((m["role"], m["content"]) for m in pair.messages)


def _pair_key(pair: PreferencePair) -> tuple[object, ...]:
    return (_conversation(pair), pair.chosen, pair.rejected)


def _answer_keys(pair: PreferencePair) -> set[tuple[object, str]]:
    conversation = _conversation(pair)
    return {(conversation, pair.chosen), (conversation, pair.rejected)}


def load_preference_stream(
    spec: str,
    *,
    data_dir: Path | None = None,
    limit: int | None,
    held_out_fraction: float,
    max_chars: int,
    seed: int,
) -> PreferenceStream:
    name, path, data = read_dataset(spec, data_dir)
    kept = [p for p in data.pairs if pair_chars(p) <= max_chars]
    stream, held = split_stream(kept, limit=limit, held_out_fraction=held_out_fraction, seed=seed)
    return PreferenceStream(name, path, stream, held, len(data.pairs), data.skipped, len(data.pairs) - len(kept))
