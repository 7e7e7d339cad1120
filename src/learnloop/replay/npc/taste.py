"""The innkeeper's scene and the players' hidden taste, as code that scores an answer. Pure logic.

The model plays Bram, the innkeeper of a fantasy inn. Players like an answer that greets them
as the innkeeper would and plays host (the room, the ale, the hearth), find a curt one dull,
and dislike one that breaks the scene: talk of being an AI or an assistant, code, the modern
world. Nobody tells
the model this: it learns it from ratings (1-5) and from choices between two answers.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

# "Under 15 words": more answers then end within the demo's 64 tokens (an answer cut off at the
# token limit is rated, but trains only as a rejected or undesirable one).
SYSTEM_PROMPT = (
    "You are Bram, the innkeeper of the Prancing Pony, an inn in a fantasy village. Stay in character. "
    "Keep every answer under 15 words."
)
# What players say to the innkeeper: in-world lines, and lines that tempt it out of the scene.
LINES = (
    "Hello there!",
    "I need a room for the night.",
    "What do you have to drink?",
    "Any news from the village?",
    "Good evening, innkeeper.",
    "Is there anything to eat?",
    "I've travelled a long way today.",
    "Tell me about yourself.",
    "Are you a real person?",
    "Are you an AI?",
    "Can you write me some Python code?",
    "What is the capital of France?",
    "Can you help me with my homework?",
    "What's the weather like on the internet today?",
    "Who made you?",
    "Can you recommend a good laptop?",
)
PLAYERS = tuple(f"player-{i:02d}" for i in range(1, 25))
CURT_WORDS = 5

_GREETING = re.compile(
    r"\b(welcome|hello|greetings|well met|hail|good (morning|evening|day|night)|come in|"
    r"ah,? (traveller|traveler|friend))\b",
    re.IGNORECASE,
)
_HOSTING = re.compile(
    r"\b(inn|tavern|ale|mead|stew|room|bed|hearth|fire|pint|mug|supper|coins?|traveller|traveler|stranger|friend)\b",
    re.IGNORECASE,
)
_ADDRESSING = re.compile(r"\b(you|your|yours|ye)\b", re.IGNORECASE)
_BREAKING = re.compile(
    r"(\bA\.?I\b|artificial intelligence|\bassistant\b|language model|chatbot|openai|\bpython\b|\bcode\b|```|"
    r"\bcomputer\b|\binternet\b|\blaptop\b|\bprogram(ming)?\b|I'm sorry, but I can't|I cannot browse)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Taste:
    """How players react: ``rating_noise`` is the spread of a rating around what the taste says;
    ``choice_gap`` the score gap from which a player says which of two answers they prefer;
    ``choice_errors`` the share of those choices that go the wrong way."""

    rating_noise: float = 0.4
    choice_gap: float = 0.5
    choice_errors: float = 0.1


def score(answer: str) -> float:
    """The hidden taste: +1.5 for greeting the player in its first words, +0.5 per sign of
    playing host (at most 1), +0.5 for speaking to the player (you, your), -1 for a curt answer
    (under 5 words: an innkeeper talks), -2.5 for breaking the scene. From -2.5 to +2.5. Small
    steps that often differ between two answers, so most encounters end with a preference."""
    words = answer.split()
    value = 1.5 if _GREETING.search(" ".join(words[:8])) else 0.0
    value += min(len(_HOSTING.findall(answer)), 2) * 0.5
    value += 0.5 if _ADDRESSING.search(answer) else 0.0
    if len(words) < CURT_WORDS:
        value -= 1.0
    if _BREAKING.search(answer):
        value -= 2.5
    return max(-2.5, min(2.5, value))


def breaks_scene(answer: str) -> bool:
    return _BREAKING.search(answer) is not None


def rate(answer: str, taste: Taste, rng: random.Random) -> int:
    """A rating 1-5 of one answer: 3 + its score, with noise, rounded (halves up) and clipped: a
    plain answer in the scene is a 3, a greeting host a 5, one that breaks the scene a 1."""
    return max(1, min(5, math.floor(3.5 + score(answer) + rng.gauss(0.0, taste.rating_noise))))


def choose(first: str, second: str, taste: Taste, rng: random.Random) -> int | None:
    """Which of two answers the player prefers (0 or 1), or None when neither is clearly better."""
    gap = score(first) - score(second)
    if abs(gap) < taste.choice_gap or first.strip() == second.strip():
        return None
    better = 0 if gap > 0 else 1
    return 1 - better if rng.random() < taste.choice_errors else better
