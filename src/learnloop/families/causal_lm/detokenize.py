"""Incremental detokenization: text deltas as tokens arrive, never half a character.

A byte-level BPE token may hold part of a UTF-8 character (a CJK character or an emoji spans
several tokens), and decoding a token alone may differ from decoding it in context. Each step
decodes a short window ending at the newest token, compares it with the window without the
newest tokens, and emits the difference only once it no longer ends in U+FFFD (an incomplete
character). ``flush`` emits what is left at the end, so the deltas always concatenate to the
final text.
"""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"


class IncrementalDetokenizer:
    """Deltas of ``tokenizer.decode(ids, skip_special_tokens=True)`` as ``ids`` grows."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self.ids: list[int] = []
        self._prefix = 0  # start of the window decoded for context
        self._read = 0  # tokens before this index have been emitted
        self.emitted: list[str] = []

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))

    def add(self, token_id: int) -> str:
        """Append one token; return the new text it completes ("" while a character is partial)."""
        self.ids.append(token_id)
        before = self._decode(self.ids[self._prefix : self._read])
        after = self._decode(self.ids[self._prefix :])
        if len(after) > len(before) and not after.endswith(REPLACEMENT):
            delta = after[len(before) :]
            self._prefix, self._read = self._read, len(self.ids)
            self.emitted.append(delta)
            return delta
        return ""

    def flush(self) -> str:
        """The rest of the text once no token will follow (a dangling partial character
        decodes as U+FFFD, as the full decode would)."""
        full = self._decode(self.ids)
        sent = "".join(self.emitted)
        if full.startswith(sent) and len(full) > len(sent):
            delta = full[len(sent) :]
            self.emitted.append(delta)
            return delta
        return ""

    @property
    def text(self) -> str:
        return "".join(self.emitted)
