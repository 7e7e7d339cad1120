"""A conversation as the model sees it: its turns, led by the model's system prompt unless the
conversation brings its own. One rule for serving, training and scoring, so an adapter is
trained and judged on prompts framed exactly as it is served."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Turn = Mapping[str, str]  # {"role": "system" | "user" | "assistant", "content": ...}


def conversation(messages: Sequence[Turn], system_prompt: str | None) -> list[dict[str, str]]:
    """``messages`` as plain turns, with ``system_prompt`` first when there is one and the
    conversation does not open with a system turn."""
    turns = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
    if system_prompt and (not turns or turns[0]["role"] != "system"):
        turns.insert(0, {"role": "system", "content": system_prompt})
    return turns
