"""What a generative model's feedback says and what curation makes of it, for people to read
(the dashboard): one read of every feedback event up to now with its answers, summed up
(``tasks.generation.ratings``) and curated under the model's policy, as the next retrain would
(``tasks.generation.curate``: the same sets ``training_data`` exports)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from learnloop.domain import Model
from learnloop.errors import ValidationError
from learnloop.store.db import Database
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.tasks.generation.curate import curate
from learnloop.tasks.generation.ratings import FeedbackSummary, summarize_feedback
from learnloop.tasks.generation.sets import GenerationSets
from learnloop.tasks.generation.training_data import TASK_KEY


@dataclass(frozen=True)
class GenerationReport:
    model: str
    summary: FeedbackSummary
    sets: GenerationSets  # curated up to ``cutoff``: counts per reason, train and held-out rows
    cutoff: datetime


def generation_report(db: Database, model: Model, now: datetime) -> GenerationReport:
    """The feedback summary and the curated sets of generative ``model`` up to ``now``."""
    if model.task != TASK_KEY:
        raise ValidationError(f"model {model.name!r} is a {model.task} model, not generative", field="model")
    with db.read() as conn:
        events = feedback_repo.feedback_with_predictions(conn, model.name, now)
    return GenerationReport(model.name, summarize_feedback(events), curate(events, model.policy, now), now)
