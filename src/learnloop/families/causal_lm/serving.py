"""A version of a generative model as served in process: one adapter (or none: the base
itself) on a shared engine, with the model's system prompt."""

from __future__ import annotations

from dataclasses import replace

from learnloop.families.causal_lm.engine import GenerationEngine
from learnloop.families.generation import GenerationHandle, GenerationRequest


class LocalGenerator:
    """``Generator`` for a version served by ``engine``: its requests carry the version's
    adapter, and the model's system prompt leads every conversation that has none."""

    def __init__(self, engine: GenerationEngine, adapter: str | None, system_prompt: str | None) -> None:
        self.engine = engine
        self.adapter = adapter
        self.system_prompt = system_prompt

    def submit(self, request: GenerationRequest) -> GenerationHandle:
        messages = request.messages
        if self.system_prompt:
            turns = list(messages) if messages is not None else [{"role": "user", "content": request.prompt or ""}]
            if not turns or turns[0].get("role") != "system":
                messages = [{"role": "system", "content": self.system_prompt}, *turns]
        if messages is not request.messages:
            request = replace(request, prompt=None, messages=messages)
        return self.engine.submit(replace(request, adapter=self.adapter))
