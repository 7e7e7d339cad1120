"""The generation task: a prompt (or a conversation) in, an LLM's response out."""

from learnloop.tasks.generation.answers import GenAnswer, Message, messages_of, prompt_text

__all__ = ["GenAnswer", "Message", "messages_of", "prompt_text"]
