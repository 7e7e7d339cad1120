"""A generative model's training sets out, in the formats trainers and fine-tuning services read.

Pure: sets (or rows) in, JSON Lines bytes out (one object per line, UTF-8, ``\\n`` after each).
Each format reads one set; asking a format of rows of another set is a ``ValidationError``.

* ``trl-sft`` (SFT rows): TRL's conversational *language modeling* type,
  ``{"messages": [{"role", "content"}, ..., {"role": "assistant", "content": response}]}``
  (https://huggingface.co/docs/trl/dataset_formats, "Dataset formats and types": Conversational /
  Language modeling), what ``SFTTrainer`` takes.
* ``trl-dpo`` (preference pairs): TRL's conversational *preference* type with an explicit
  prompt, ``{"prompt": [messages], "chosen": [assistant message], "rejected": [assistant
  message]}`` (same page, Conversational / Preference), what ``DPOTrainer`` takes.
* ``trl-kto`` (KTO rows): TRL's conversational *unpaired preference* type, ``{"prompt":
  [messages], "completion": [assistant message], "label": true|false}`` (same page,
  Conversational / Unpaired preference), what ``KTOTrainer`` takes.
* ``openai-chat`` (SFT rows): OpenAI's supervised fine-tuning file for chat models, one
  ``{"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}`` per line, the
  last message the assistant's (https://platform.openai.com/docs/guides/supervised-fine-tuning,
  and the API reference's "training format for chat models", ``FineTuneChatRequestInput``).
* ``openai-dpo`` (preference pairs): OpenAI's preference (DPO) fine-tuning file, ``{"input":
  {"messages": [...]}, "preferred_output": [{"role": "assistant", "content": str}],
  "non_preferred_output": [{"role": "assistant", "content": str}]}``
  (https://developers.openai.com/api/docs/guides/direct-preference-optimization, "Data format";
  API reference ``FineTunePreferenceRequestInput``).
* ``bedrock`` (SFT rows): Amazon Bedrock's conversation format for fine-tuning,
  ``{"schemaVersion": "bedrock-conversation-2024", "system": [{"text": str}], "messages":
  [{"role": "user"|"assistant", "content": [{"text": str}]}, ...]}``; system messages go to the
  optional top-level ``system`` list, the conversation ends with the assistant's answer
  (https://docs.aws.amazon.com/bedrock/latest/userguide/preparing-text-data.html, "Converse API
  format (Single turn and Multi turn)").

None of these formats has a place for weights or provenance: a row's weight is the trainer's
(``sets``), and what a row came from stays in the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from learnloop.errors import ValidationError
from learnloop.tasks.generation.answers import Message
from learnloop.tasks.generation.sets import (
    GenerationSets,
    KtoRow,
    Part,
    PreferencePair,
    Row,
    SetName,
    SftRow,
)

BEDROCK_SCHEMA = "bedrock-conversation-2024"


def _chat(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [m.to_json() for m in messages]


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def trl_sft(row: SftRow) -> dict[str, Any]:
    return {"messages": _chat(row.messages) + _assistant(row.response)}


def trl_dpo(row: PreferencePair) -> dict[str, Any]:
    return {"prompt": _chat(row.messages), "chosen": _assistant(row.chosen), "rejected": _assistant(row.rejected)}


def trl_kto(row: KtoRow) -> dict[str, Any]:
    return {"prompt": _chat(row.messages), "completion": _assistant(row.response), "label": row.desirable}


def openai_chat(row: SftRow) -> dict[str, Any]:
    return {"messages": _chat(row.messages) + _assistant(row.response)}


def openai_dpo(row: PreferencePair) -> dict[str, Any]:
    return {
        "input": {"messages": _chat(row.messages)},
        "preferred_output": _assistant(row.chosen),
        "non_preferred_output": _assistant(row.rejected),
    }


def bedrock(row: SftRow) -> dict[str, Any]:
    system = [{"text": m.content} for m in row.messages if m.role == "system"]
    turns = [m for m in row.messages if m.role != "system"] + [Message("assistant", row.response)]
    out: dict[str, Any] = {"schemaVersion": BEDROCK_SCHEMA}
    if system:
        out["system"] = system
    out["messages"] = [{"role": m.role, "content": [{"text": m.content}]} for m in turns]
    return out


# format -> (the set it reads, the row type, the converter)
FORMATS: dict[str, tuple[SetName, type, Callable[[Any], dict[str, Any]]]] = {
    "trl-sft": ("sft", SftRow, trl_sft),
    "trl-dpo": ("preference", PreferencePair, trl_dpo),
    "trl-kto": ("kto", KtoRow, trl_kto),
    "openai-chat": ("sft", SftRow, openai_chat),
    "openai-dpo": ("preference", PreferencePair, openai_dpo),
    "bedrock": ("sft", SftRow, bedrock),
}


def format_set(fmt: str) -> SetName:
    """The set a format reads; an unknown format is a ``ValidationError`` naming the known ones."""
    if fmt not in FORMATS:
        raise ValidationError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}", field="format")
    return FORMATS[fmt][0]


def export_rows(rows: Sequence[Row], fmt: str) -> bytes:
    """``rows`` in format ``fmt``, one JSON object per line."""
    name = format_set(fmt)
    _, row_type, convert = FORMATS[fmt]
    for row in rows:
        if not isinstance(row, row_type):
            raise ValidationError(
                f"format {fmt!r} exports {name} rows ({row_type.__name__}), not {type(row).__name__}; "
                f"the formats of that set: {', '.join(f for f, spec in FORMATS.items() if isinstance(row, spec[1]))}",
                field="format",
            )
    return b"".join(orjson.dumps(convert(row)) + b"\n" for row in rows)


def export_sets(sets: GenerationSets, fmt: str, part: Part = "train") -> bytes:
    """The part (``train`` or ``held_out``) of the set format ``fmt`` reads, in that format."""
    if part not in ("train", "held_out"):
        raise ValidationError(f"part must be 'train' or 'held_out'; got {part!r}", field="part")
    return export_rows(sets.rows(format_set(fmt), part), fmt)
