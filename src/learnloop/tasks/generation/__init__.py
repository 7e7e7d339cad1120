"""The generation task: a prompt (or a conversation) in, an LLM's response out."""

from learnloop.drift.refusal import REFUSAL_OPENERS, is_refusal
from learnloop.tasks.generation.answers import GenAnswer, Message, messages_of, prompt_text
from learnloop.tasks.generation.outcomes import GenerationOutcomes
from learnloop.tasks.generation.task import GenerationTask

__all__ = [
    "REFUSAL_OPENERS",
    "GenAnswer",
    "GenerationOutcomes",
    "GenerationTask",
    "Message",
    "is_refusal",
    "messages_of",
    "prompt_text",
]
