"""Reading preference data (a conversation, a preferred and a rejected answer) from the two
public formats learnloop benchmarks on, and the Orca DPO sample it ships.

* Orca DPO pairs in the Azure/OpenAI DPO format: one JSON object a line,
  ``{"input": {"messages": [...]}, "preferred_output": [{"role": "assistant", "content": ...}],
  "non_preferred_output": [...]}`` (``read_orca_dpo``).
* Anthropic HH-RLHF: ``{"chosen": transcript, "rejected": transcript}``, each transcript
  ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``; the prompt is the shared prefix up to the last
  ``"\\n\\nAssistant:"``, the answers are the last assistant turns (``read_hh_rlhf``; a ``.gz``
  file is read as gzip).

Rows that do not make a pair (malformed, no shared prompt, empty or identical answers) are
skipped and counted.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from learnloop.errors import DataError

ORCA_DPO_SAMPLE = "orca_dpo_sample.jsonl"
_HH_TURN = re.compile(r"\n\n(Human|Assistant):")
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}
_HH_LAST_ANSWER = "\n\nAssistant:"


@dataclass(frozen=True)
class PreferencePair:
    """A conversation up to the answer (``{"role", "content"}`` turns), the preferred answer and the rejected one."""

    messages: tuple[Mapping[str, str], ...]
    chosen: str
    rejected: str


@dataclass(frozen=True)
class PreferenceData:
    pairs: list[PreferencePair]
    skipped: int  # rows that made no pair


def jsonl_lines(path: Path) -> Iterator[str]:
    """The non-blank lines of a JSONL file (a ``.gz`` file read as gzip)."""
    if not path.is_file():
        raise DataError(f"preference data file not found: {path}")
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield line


def _pair(messages: list[dict[str, str]], chosen: str, rejected: str) -> PreferencePair | None:
    chosen, rejected = chosen.strip(), rejected.strip()
    if not messages or not chosen or not rejected or chosen == rejected:
        return None
    return PreferencePair(tuple(messages), chosen, rejected)


def _orca_row(row: Any) -> PreferencePair | None:
    try:
        messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in row["input"]["messages"]]
        chosen = str(row["preferred_output"][-1]["content"])
        rejected = str(row["non_preferred_output"][-1]["content"])
    except (KeyError, IndexError, TypeError):
        return None
    return _pair(messages, chosen, rejected)


def read_orca_dpo(path: Path) -> PreferenceData:
    """The pairs of a JSONL file in the Azure/OpenAI DPO format (Orca DPO pairs)."""
    return _read_pairs(path, _orca_row)


def hh_turns(transcript: str) -> list[dict[str, str]]:
    """The chat turns of an HH-RLHF transcript (Human -> user, Assistant -> assistant);
    consecutive turns of one role are joined."""
    parts = _HH_TURN.split(transcript)
    turns: list[dict[str, str]] = []
    for role, content in zip(parts[1::2], parts[2::2], strict=True):
        text = content.strip()
        if turns and turns[-1]["role"] == _HH_ROLES[role]:
            turns[-1]["content"] = f"{turns[-1]['content']}\n\n{text}".strip()
        elif text:
            turns.append({"role": _HH_ROLES[role], "content": text})
    return turns


def _hh_row(row: Any) -> PreferencePair | None:
    try:
        chosen, rejected = str(row["chosen"]), str(row["rejected"])
    except (KeyError, TypeError):
        return None
    cut_chosen, cut_rejected = chosen.rfind(_HH_LAST_ANSWER), rejected.rfind(_HH_LAST_ANSWER)
    if cut_chosen < 0 or chosen[:cut_chosen] != rejected[:cut_rejected]:
        return None
    start = len(_HH_LAST_ANSWER)
    return _pair(hh_turns(chosen[:cut_chosen]), chosen[cut_chosen + start :], rejected[cut_rejected + start :])


def read_hh_rlhf(path: Path) -> PreferenceData:
    """The pairs of an Anthropic HH-RLHF JSONL file (``.gz`` read as gzip)."""
    return _read_pairs(path, _hh_row)


def _read_pairs(path: Path, parse: Callable[[Any], PreferencePair | None]) -> PreferenceData:
    """Each JSON line of ``path`` parsed into a pair; rows ``parse`` cannot use are counted."""
    pairs: list[PreferencePair] = []
    skipped = 0
    for number, line in enumerate(jsonl_lines(path), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {number}: not JSON ({exc.msg})") from exc
        pair = parse(row)
        if pair is None:
            skipped += 1
        else:
            pairs.append(pair)
    return PreferenceData(pairs, skipped)


def orca_dpo_sample_path() -> Path:
    """Path of the shipped 40-pair Orca DPO sample (MIT; ``orca_dpo/README.md``)."""
    resource = resources.files("learnloop.datasets") / "orca_dpo" / ORCA_DPO_SAMPLE
    if not isinstance(resource, Path) or not resource.is_file():
        raise DataError(f"shipped data file is missing from the installation: {resource}")
    return resource


def read_orca_dpo_sample() -> list[PreferencePair]:
    """The shipped Orca DPO sample's 40 pairs."""
    return read_orca_dpo(orca_dpo_sample_path()).pairs
