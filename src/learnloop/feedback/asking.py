"""Asking for feedback where it helps: the champion's newest answers nobody has judged yet.
A classifier's are ranked by ``tasks.classification.active.select_for_feedback`` (uncertainty
with a diversity rule); a generative model's are offered to rate or correct, and two answers to
one prompt to compare (``answers_to_judge``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from learnloop.errors import ValidationError, WrongTaskError
from learnloop.store.db import Database
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import models as model_repo
from learnloop.store.repositories import predictions as prediction_repo
from learnloop.tasks.classification import ClassAnswer
from learnloop.tasks.classification.active import STRATEGIES, Candidate, Pick, Strategy, select_for_feedback
from learnloop.tasks.generation import GenAnswer
from learnloop.tasks.generation.training_data import TASK_KEY as GENERATION

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


@dataclass(frozen=True)
class AnswerToJudge:
    """One logged answer of a generative model that nobody has judged yet."""

    prediction_id: str
    prompt: str
    response: str
    source: str | None  # the provider that made it, for an answer made elsewhere
    created_at: datetime


@dataclass(frozen=True)
class JudgeResult:
    model: str
    version: int | None  # the champion whose answers were considered (None: no champion)
    window: int
    considered: int  # unjudged answers in the window
    # One answer: rate it or correct it. Two (answers to one prompt): pick the better.
    items: list[tuple[AnswerToJudge, ...]]


def _check_window(limit: int, window: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}", field="limit")
    if not 1 <= window <= MAX_WINDOW:
        raise ValidationError(f"window must be between 1 and {MAX_WINDOW}, got {window}", field="window")


def pair_and_rank(answers: list[AnswerToJudge], limit: int) -> list[tuple[AnswerToJudge, ...]]:
    """``answers`` (newest first) grouped by prompt: a prompt answered twice or more gives a
    pair (its two newest answers) to compare, the others are single answers to rate; pairs
    first (a preference is the richer signal), each kind newest first; at most ``limit``."""
    by_prompt: dict[str, list[AnswerToJudge]] = {}
    for answer in answers:
        by_prompt.setdefault(answer.prompt, []).append(answer)
    pairs = [(group[0], group[1]) for group in by_prompt.values() if len(group) >= 2]
    singles = [(group[0],) for group in by_prompt.values() if len(group) == 1]
    return [*pairs, *singles][:limit]


class ActiveLearningService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def ask(self, model: str, *, limit: int = 20, strategy: str = "margin", window: int = 1000) -> AskResult:
        """The ``limit`` answers among the champion's newest ``window`` unlabelled ones most
        worth asking users about. Clients then send feedback with their ``prediction_id``."""
        _check_window(limit, window)
        if strategy not in STRATEGIES:
            raise ValidationError(
                f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}", field="strategy"
            )
        chosen: Strategy = strategy
        with self.db.read() as conn:
            if model_repo.get_model(conn, model).task == GENERATION:  # NotFoundError for an unknown model
                raise WrongTaskError(
                    f"model {model!r} generates text: its answers to judge are on the dashboard's labelling page",
                    field="model",
                )
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

    def answers_to_judge(self, model: str, *, limit: int = 20, window: int = 1000) -> JudgeResult:
        """A generative model's champion's newest ``window`` answers that no event refers to
        (nor a preference names as rejected), as ``pair_and_rank`` offers them."""
        _check_window(limit, window)
        with self.db.read() as conn:
            if model_repo.get_model(conn, model).task != GENERATION:
                raise WrongTaskError(f"model {model!r} classifies: ask about its answers with ask()", field="model")
            champion = model_repo.get_deployment(conn, model).champion_version
            rows = [] if champion is None else prediction_repo.unlabelled_predictions(conn, model, champion, window)
            rejected = feedback_repo.rejected_in_preferences(conn, model, rows[-1].created_at) if rows else set()
        answers = []
        for p in rows:
            if p.id in rejected:
                continue
            answer = GenAnswer.of(p.answer)
            answers.append(AnswerToJudge(p.id, p.text, answer.response, answer.source_model, p.created_at))
        return JudgeResult(model, champion, window, len(answers), pair_and_rank(answers, limit))
