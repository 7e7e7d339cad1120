"""Asking for feedback where it helps: the champion's newest answers nobody has judged yet,
ranked by ``tasks.classification.active.select_for_feedback`` (uncertainty with a diversity rule)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from learnloop.errors import ValidationError
from learnloop.store.db import Database
from learnloop.store.repositories import models as model_repo
from learnloop.store.repositories import predictions as prediction_repo
from learnloop.tasks.classification import ClassAnswer
from learnloop.tasks.classification.active import STRATEGIES, Candidate, Pick, Strategy, select_for_feedback

MAX_LIMIT = 500
MAX_WINDOW = 20_000


@dataclass(frozen=True)
class AskItem:
    pick: Pick
    created_at: datetime


@dataclass(frozen=True)
class AskResult:
    model: str
    version: int | None  # the champion whose answers were considered (None: no champion)
    strategy: Strategy
    window: int
    considered: int  # unlabelled answers in the window
    items: list[AskItem]


class ActiveLearningService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def ask(self, model: str, *, limit: int = 20, strategy: str = "margin", window: int = 1000) -> AskResult:
        """The ``limit`` answers among the champion's newest ``window`` unlabelled ones most
        worth asking users about. Clients then send feedback with their ``prediction_id``."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}", field="limit")
        if not 1 <= window <= MAX_WINDOW:
            raise ValidationError(f"window must be between 1 and {MAX_WINDOW}, got {window}", field="window")
        if strategy not in STRATEGIES:
            raise ValidationError(
                f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}", field="strategy"
            )
        chosen: Strategy = strategy
        with self.db.read() as conn:
            model_repo.get_model(conn, model)  # NotFoundError for an unknown model
            champion = model_repo.get_deployment(conn, model).champion_version
            rows = [] if champion is None else prediction_repo.unlabelled_predictions(conn, model, champion, window)
        candidates = [Candidate(p.id, p.text, ClassAnswer.of(p.answer).probabilities) for p in rows]
        served_at = {p.id: p.created_at for p in rows}
        picks = select_for_feedback(candidates, limit, strategy=chosen)
        return AskResult(
            model=model,
            version=champion,
            strategy=chosen,
            window=window,
            considered=len(rows),
            items=[AskItem(p, served_at[p.id]) for p in picks],
        )
