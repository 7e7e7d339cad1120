"""Scoring versions of a generative model offline, on one loaded base: how likely each one
finds a given answer, and what each one answers.

* ``answer_logprobs``: for each (conversation, answer), the log-probability the model gives
  the answer's tokens (and the end of the answer) after the prompt, summed, and how many
  tokens that was. The prompt is encoded as the engine encodes it for serving (the chat
  template with the generation prompt), so a score is about the answer as the version would
  produce it.
* ``greedy_answers``: each conversation's greedy answer, in left-padded batches;
  ``sampled_answers``: several sampled ones per conversation, reproducible by seed.

A version is an adapter attached to the base under a name, or ``None`` for the base itself
(``use_version``). Pure compute on the loaded model; torch is imported inside.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from learnloop.families.causal_lm.conversation import Turn, conversation
from learnloop.families.causal_lm.runtime import LoadedBase


@dataclass(frozen=True)
class AnswerScore:
    logprob: float  # summed over the answer's tokens
    tokens: int

    @property
    def nll_per_token(self) -> float:
        return -self.logprob / self.tokens if self.tokens else 0.0


@contextlib.contextmanager
def use_version(loaded: LoadedBase, adapter: str | None) -> Iterator[Any]:
    """The loaded model as version ``adapter`` (an attached adapter's name; None: the base)."""
    model = loaded.model
    if adapter is None:
        if loaded.adapters:
            with model.disable_adapter():
                yield model
        else:
            yield model
        return
    if adapter not in loaded.adapters:
        raise KeyError(f"adapter {adapter!r} is not attached")
    model.set_adapter(adapter)
    yield model


def _prompt(loaded: LoadedBase, messages: Sequence[Turn], system_prompt: str | None) -> tuple[str, bool]:
    """The prompt's text and whether the tokenizer adds its special tokens to it, as the
    engine encodes a request for this conversation."""
    tokenizer = loaded.tokenizer
    turns = conversation(messages, system_prompt)
    if tokenizer.chat_template:
        return str(tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)), False
    return "\n\n".join(t["content"] for t in turns), True


def prompt_ids(loaded: LoadedBase, messages: Sequence[Turn], system_prompt: str | None = None) -> list[int]:
    """The prompt's token ids, as the engine encodes a request for this conversation."""
    text, special = _prompt(loaded, messages, system_prompt)
    return list(loaded.tokenizer(text, add_special_tokens=special)["input_ids"])


def _encode_pair(
    loaded: LoadedBase, messages: Sequence[Turn], answer: str, system_prompt: str | None
) -> tuple[list[int], list[int]]:
    """The prompt's ids and the answer's ids after it, ending with the end-of-answer token."""
    tokenizer = loaded.tokenizer
    text, special = _prompt(loaded, messages, system_prompt)
    head = list(tokenizer(text, add_special_tokens=special)["input_ids"])
    joined = list(tokenizer(text + answer, add_special_tokens=special)["input_ids"])
    if joined[: len(head)] == head:
        tail = joined[len(head) :]
    else:  # a token merged across the boundary: the answer on its own
        tail = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    eos = tokenizer.eos_token_id
    return head, tail + ([eos] if isinstance(eos, int) else [])


def answer_logprobs(
    loaded: LoadedBase,
    adapter: str | None,
    items: Sequence[tuple[Sequence[Turn], str]],
    *,
    system_prompt: str | None = None,
    batch_size: int = 8,
    max_length: int = 1024,
) -> list[AnswerScore]:
    """Each (conversation, answer)'s summed log-probability under version ``adapter``."""
    import torch

    encoded = []
    for messages, answer in items:
        head, tail = _encode_pair(loaded, messages, answer, system_prompt)
        keep = max(0, max_length - len(tail))  # a long prompt loses its start, never the answer
        encoded.append((head[-keep:] if keep else [], tail[:max_length]))
    pad = loaded.tokenizer.pad_token_id or 0
    scores: list[AnswerScore] = []
    with use_version(loaded, adapter) as model, torch.inference_mode():
        for start in range(0, len(encoded), batch_size):
            batch = encoded[start : start + batch_size]
            width = max(len(h) + len(t) for h, t in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, (head, tail) in enumerate(batch):
                seq = head + tail
                ids[row, : len(seq)] = torch.tensor(seq)
                mask[row, : len(seq)] = 1
            logprobs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
            for row, (head, tail) in enumerate(batch):
                first = max(len(head), 1)  # the first token has no prediction before it
                targets = ids[row, first : len(head) + len(tail)]
                picked = logprobs[row, first - 1 : len(head) + len(tail) - 1].gather(1, targets[:, None])
                scores.append(AnswerScore(float(picked.sum()), int(targets.numel())))
    return scores


def greedy_answers(
    loaded: LoadedBase,
    adapter: str | None,
    conversations: Sequence[Sequence[Turn]],
    *,
    max_new_tokens: int = 64,
    system_prompt: str | None = None,
    batch_size: int = 8,
) -> list[str]:
    """Each conversation's greedy answer under version ``adapter`` (left-padded batches)."""
    return _answers(loaded, adapter, conversations, max_new_tokens, system_prompt, batch_size, None, 0)


def sampled_answers(
    loaded: LoadedBase,
    adapter: str | None,
    conversations: Sequence[Sequence[Turn]],
    *,
    samples: int,
    temperature: float,
    seed: int = 0,
    max_new_tokens: int = 64,
    system_prompt: str | None = None,
    batch_size: int = 8,
) -> list[list[str]]:
    """``samples`` answers per conversation under version ``adapter``, sampled at
    ``temperature``; each batch draws from a generator seeded by ``seed`` and its position, so
    two versions asked with the same seed draw the same random numbers (their differences are
    the versions', not the dice's)."""
    rows = [c for c in conversations for _ in range(samples)]
    flat = _answers(loaded, adapter, rows, max_new_tokens, system_prompt, batch_size, temperature, seed)
    return [flat[i * samples : (i + 1) * samples] for i in range(len(conversations))]


def _answers(
    loaded: LoadedBase,
    adapter: str | None,
    conversations: Sequence[Sequence[Turn]],
    max_new_tokens: int,
    system_prompt: str | None,
    batch_size: int,
    temperature: float | None,  # None: greedy
    seed: int,
) -> list[str]:
    import torch

    tokenizer = loaded.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    answers: list[str] = []
    with use_version(loaded, adapter) as model, torch.inference_mode():
        for start in range(0, len(conversations), batch_size):
            heads = [prompt_ids(loaded, c, system_prompt) for c in conversations[start : start + batch_size]]
            width = max(len(h) for h in heads)
            ids = torch.full((len(heads), width), pad, dtype=torch.long)
            mask = torch.zeros((len(heads), width), dtype=torch.long)
            for row, head in enumerate(heads):
                ids[row, width - len(head) :] = torch.tensor(head)
                mask[row, width - len(head) :] = 1
            sampling: dict[str, Any] = {"do_sample": False}
            if temperature is not None:
                torch.manual_seed(seed * 1_000_003 + start)  # generate draws from torch's global generator
                sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}  # as served
            out = model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, pad_token_id=pad, **sampling
            )
            answers += [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in out]
    return answers
