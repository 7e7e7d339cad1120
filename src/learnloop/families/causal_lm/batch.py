"""The tensors of a running batch: left-padded prompts, their attention mask, the last
position of each row, the KV cache and the next-token logits.

Rows join (``admit``: their prompts are prefilled together, then merged with the running rows
by left-padding the shorter cache) and leave (``keep``: a finished or cancelled row is dropped
from every tensor, so it costs nothing at the next step) at step boundaries. Padded positions
are masked out, so a row's tokens do not depend on what else shares the batch.

torch is imported inside the functions: importing this module does not import it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from learnloop.families.causal_lm.detokenize import IncrementalDetokenizer
from learnloop.families.generation import GenerationHandle

if TYPE_CHECKING:
    import torch


@dataclass
class Row:
    handle: GenerationHandle
    prompt_ids: list[int]
    generator: torch.Generator | None
    detokenizer: IncrementalDetokenizer
    tokens: list[int] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)  # when it joined a batch (its prefill)


def _pad_left(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    import torch.nn.functional as functional

    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    pad = [0, 0] * (tensor.dim() - 1 - (dim % tensor.dim())) + [missing, 0]
    return functional.pad(tensor, pad)


class DecodeState:
    """What one forward pass per step needs; ``logits`` holds each row's next-token logits."""

    def __init__(self, model: Any, pad_id: int) -> None:
        self.model = model
        self.pad_id = pad_id
        self.rows: list[Row] = []
        self.mask: torch.Tensor | None = None
        self.positions: torch.Tensor | None = None
        self.cache: Any = None
        self.logits: torch.Tensor | None = None

    @property
    def mergeable(self) -> bool:
        """Whether rows can join or be trimmed by editing the cache's tensors: plain dynamic
        layers only (a sliding-window or quantized cache keeps more state than its tensors)."""
        from transformers.cache_utils import DynamicLayer

        return self.cache is None or all(type(layer) is DynamicLayer for layer in self.cache.layers)

    def admit(self, rows: list[Row]) -> None:
        """Prefill ``rows``' prompts in one forward pass and add them to the batch."""
        import torch

        width = max(len(row.prompt_ids) for row in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row.prompt_ids) :] = torch.tensor(row.prompt_ids, dtype=torch.long)
            mask[i, width - len(row.prompt_ids) :] = 1
        positions = mask.cumsum(-1) - 1
        positions.masked_fill_(mask == 0, 1)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1, :].float()
        if self.mask is None or self.positions is None or self.logits is None:
            self.mask, self.positions, self.cache, self.logits = mask, positions[:, -1], out.past_key_values, logits
        else:
            total = max(self.mask.shape[1], width)
            self.mask = torch.cat([_pad_left(self.mask, total, 1), _pad_left(mask, total, 1)])
            for old, new in zip(self.cache.layers, out.past_key_values.layers, strict=True):
                old.keys = torch.cat([_pad_left(old.keys, total, -2), _pad_left(new.keys, total, -2)])
                old.values = torch.cat([_pad_left(old.values, total, -2), _pad_left(new.values, total, -2)])
            self.positions = torch.cat([self.positions, positions[:, -1]])
            self.logits = torch.cat([self.logits, logits])
        self.rows.extend(rows)

    def keep(self, indices: list[int]) -> None:
        """Keep only the rows at ``indices`` (in that order); drop padding columns no row needs."""
        import torch

        assert self.mask is not None and self.positions is not None and self.logits is not None
        if len(indices) == len(self.rows):
            return
        index = torch.tensor(indices, dtype=torch.long)
        mask = self.mask[index]
        if self.mergeable:
            unused = int((mask.sum(0) == 0).long().cumprod(0).sum())  # leading all-padding columns
            mask = mask[:, unused:]
            for layer in self.cache.layers:
                layer.keys = layer.keys[index, :, unused:, :]
                layer.values = layer.values[index, :, unused:, :]
        else:
            self.cache.batch_select_indices(index)
        self.mask = mask
        self.positions = self.positions[index]
        self.logits = self.logits[index]
        self.rows = [self.rows[i] for i in indices]

    def step(self, tokens: list[int]) -> None:
        """Feed each row its next token (in row order); compute the logits after it."""
        import torch

        assert self.mask is not None and self.positions is not None
        batch = len(tokens)
        self.mask = torch.cat([self.mask, torch.ones((batch, 1), dtype=torch.long)], dim=1)
        self.positions = self.positions + 1
        out = self.model(
            input_ids=torch.tensor(tokens, dtype=torch.long)[:, None],
            attention_mask=self.mask,
            position_ids=self.positions[:, None],
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.cache = out.past_key_values
        self.logits = out.logits[:, -1, :].float()


def choose_tokens(logits: torch.Tensor, rows: list[Row]) -> list[int]:
    """Each row's next token: the argmax when its temperature is 0, else a draw from its own
    generator over the top-p nucleus of its tempered distribution."""
    import torch

    tokens: list[int] = logits.argmax(-1).tolist()
    for i, row in enumerate(rows):
        request = row.handle.request
        if request.temperature <= 0.0:
            continue
        probs = torch.softmax(logits[i] / request.temperature, dim=-1)
        if request.top_p < 1.0:
            ordered, order = probs.sort(descending=True)
            outside = (ordered.cumsum(-1) - ordered) > request.top_p
            ordered = ordered.masked_fill(outside, 0.0)
            tokens[i] = int(order[torch.multinomial(ordered, 1, generator=row.generator)].item())
        else:
            tokens[i] = int(torch.multinomial(probs, 1, generator=row.generator).item())
    return tokens
