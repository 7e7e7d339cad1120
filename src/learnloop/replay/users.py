"""Simulated users: who gives feedback on which prediction, when, and how truthfully.

Each stream item is seen by one of ``subjects`` users. A user gives feedback with probability
``feedback_rate``, ``delay`` items after the prediction. An honest user gives the true label,
except with probability ``noise`` a wrong one; an adversarial user (a share ``adversarial`` of
the subjects) always gives a wrong one. With ``thumbs`` the user judges the served answer
(up when it matches what they believe) instead of naming a label. Every draw comes from one
seeded generator, in stream order, so a replay is reproducible.

With ``selection="uncertain"`` users do not pick answers at random: every ``ask_every`` items
the loop asks about the ones it is least sure of (``replay.asking``), with the same budget of
``feedback_rate`` labels per item, and the users asked answer them (noise and adversaries as
above).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from learnloop.errors import ValidationError

SELECTIONS = ("random", "uncertain")


@dataclass(frozen=True)
class UserModel:
    feedback_rate: float = 0.3
    delay: int = 0  # stream items between a prediction and its feedback
    noise: float = 0.1  # share of honest feedback that names a wrong label
    thumbs: bool = False  # thumbs up/down on the served answer instead of a label
    adversarial: float = 0.0  # share of subjects who always name a wrong label
    subjects: int = 500
    selection: str = "random"  # "random", or "uncertain": the loop asks about its smallest margins
    ask_every: int = 20  # uncertain: stream items per round of asking

    def __post_init__(self) -> None:
        checks = [
            (0 < self.feedback_rate <= 1, "feedback_rate", "must be in (0, 1]"),
            (self.delay >= 0, "delay", "must be >= 0"),
            (0 <= self.noise < 1, "noise", "must be in [0, 1)"),
            (0 <= self.adversarial < 1, "adversarial", "must be in [0, 1)"),
            (self.subjects >= 1, "subjects", "must be >= 1"),
            (self.selection in SELECTIONS, "selection", f"must be one of {', '.join(SELECTIONS)}"),
            (self.ask_every >= 1, "ask_every", "must be >= 1"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise ValidationError(f"{name} {rule}, got {getattr(self, name)!r}", field=name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feedback_rate": self.feedback_rate,
            "delay": self.delay,
            "noise": self.noise,
            "thumbs": self.thumbs,
            "adversarial": self.adversarial,
            "subjects": self.subjects,
            "selection": self.selection,
            "ask_every": self.ask_every,
        }


@dataclass(frozen=True)
class PlannedFeedback:
    item: int  # stream index of the prediction it is about
    due: int  # stream index after which it is sent
    subject: str
    label: str | None  # the label named (label feedback)
    thumbs: str | None  # "up" / "down" (thumbs feedback)
    truthful: bool  # whether it agrees with the true label


class SimulatedUsers:
    def __init__(self, model: UserModel, labels: list[str], seed: int) -> None:
        self.model = model
        self.labels = sorted(labels)
        import numpy as np  # here: the CLI imports this module for --help, numpy only for a replay

        self._rng = np.random.default_rng(seed)
        n_adversarial = round(model.adversarial * model.subjects)
        self.adversaries = frozenset(f"user-{i}" for i in range(n_adversarial))

    def subject_for(self) -> str:
        return f"user-{int(self._rng.integers(self.model.subjects))}"

    def _wrong_label(self, truth: str) -> str:
        others = [label for label in self.labels if label != truth]
        return others[int(self._rng.integers(len(others)))] if others else truth

    def react(self, item: int, subject: str, truth: str, served: str) -> PlannedFeedback | None:
        """The feedback this user will give on the answer ``served`` to item ``item``, if any."""
        if self._rng.random() >= self.model.feedback_rate:
            return None
        return self.answer(item, subject, truth, served, item + self.model.delay)

    def answer(self, item: int, subject: str, truth: str, served: str, due: int) -> PlannedFeedback:
        """The feedback this user gives when asked about item ``item`` (sent after item ``due``)."""
        adversary = subject in self.adversaries
        lies = adversary or self._rng.random() < self.model.noise
        believed = self._wrong_label(truth) if lies else truth
        if self.model.thumbs:
            thumbs = "up" if served == believed else "down"
            truthful = (thumbs == "up") == (served == truth)
            return PlannedFeedback(item, due, subject, None, thumbs, truthful)
        return PlannedFeedback(item, due, subject, believed, None, believed == truth)
