"""The labelling page: the answers most worth a person's judgement, one click or one key each.

A classifier's page lists what ``ActiveLearningService.ask`` picks (the champion's most
uncertain unlabelled answers) with one button per label (keys 1-9 for the first nine labels);
a generative model's lists what ``answers_to_judge`` offers: an answer to rate (1-5) or edit
into a correction, or two answers to one prompt to pick the better of (a, b). Each judgement
is a feedback event like any other (``FeedbackService.record``), given by a *labeller*: the
name the person entered (kept in their browser), else the name of the key they logged in with
(never the key), else the loopback user. Undo takes back the labeller's own last
event (``FeedbackService.retract``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from learnloop.access import OPEN, Principal
from learnloop.domain import FeedbackInput
from learnloop.errors import ValidationError
from learnloop.feedback.items import parse_item
from learnloop.services import Services
from learnloop.tasks.generation.training_data import TASK_KEY as GENERATION

ITEMS = 20
KEYED_LABELS = 9  # labels 1..9 have a key; more labels are still buttons
MAX_NAME = 64
# What a labelling form may send: one judgement on one answer, or a preference between two.
_FIELDS = ("prediction_id", "label", "rating", "correction", "chosen_prediction_id", "rejected_prediction_id")


def label_page(services: Services, model: str, limit: int = ITEMS) -> dict[str, Any]:
    """The page's items: ``AskItem``s for a classifier, tuples of ``AnswerToJudge`` (one to
    rate or correct, two to compare) for a generative model."""
    m = services.registry.get_model(model)
    if m.task == GENERATION:
        judged = services.active.answers_to_judge(model, limit=limit)
        items: list[Any] = list(judged.items)
        version, considered = judged.version, judged.considered
    else:
        asked = services.active.ask(model, limit=limit)
        items, version, considered = list(asked.items), asked.version, asked.considered
    return {
        "model": m,
        "generative": m.task == GENERATION,
        "items": items,
        "version": version,
        "considered": considered,
        "keyed": KEYED_LABELS,
    }


def labeller(name: str, principal: Principal) -> str:
    """Who gives the page's feedback (stored hashed, as every subject): the name entered,
    else the key's name, else the loopback user (a server without keys)."""
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise ValidationError(f"a labeller's name is at most {MAX_NAME} characters", field="name")
    if name:
        return f"dashboard:{name}"
    if principal is OPEN:
        return "dashboard:loopback"
    return f"dashboard-{principal.name}"


def feedback_item(form: Mapping[str, str], subject: str) -> FeedbackInput:
    """The feedback a labelling form sent, checked as the API checks a body."""
    raw: dict[str, Any] = {k: form[k] for k in _FIELDS if form.get(k)}
    raw["subject"] = subject
    raw["metadata"] = {"via": "dashboard labelling"}
    return parse_item(raw)
