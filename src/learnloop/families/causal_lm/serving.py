"""A version of a generative model as served in process: one adapter (or none: the base
itself) on a shared engine, with the model's system prompt."""

from __future__ import annotations

from dataclasses import replace

from learnloop.families.causal_lm.conversation import conversation
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
        if self.system_prompt:
            given = (
                request.messages
                if request.messages is not None
                else [{"role": "user", "content": request.prompt or ""}]
            )
            led = conversation(given, self.system_prompt)
            if len(led) > len(given):  # the system prompt was added
                request = replace(request, prompt=None, messages=led)
        return self.engine.submit(replace(request, adapter=self.adapter))
