"""A batch of stream messages through the intake services the HTTP API uses.

``StreamIntake.handle(messages)`` parses each message's envelope (a feedback event's body with
it), then hands runs of consecutive events of one type and model to ``FeedbackService.record_many``,
``PredictionService.answer_many`` or ``GenerationLog.log_many`` (the same parse, rules and
scrubbing as HTTP), waits until they are committed, and answers, per message, ``None``
(stored, or stored before: a redelivery) or the ``Refusal`` that sends it to the dead letters.
Runs are taken in the stream's order, so events keep their order.

A refusal is what intake refuses (a malformed message, an unknown model, a rule); trouble
that may pass (the database down or busy: ``OverloadedError``, or any other exception) is
raised instead, and the consumer tries the same batch again: nothing is lost, nothing is
acknowledged before it is stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from learnloop.api.schemas import PredictRequest
from learnloop.errors import DuplicateInBatchError, LearnloopError, OverloadedError, ValidationError
from learnloop.feedback.generations import GenerationLog
from learnloop.feedback.ingest import IngestWriter
from learnloop.feedback.service import FeedbackService, PredictionService
from learnloop.streams.events import Message, parse_envelope


@dataclass(frozen=True)
class Refusal:
    """Why a message goes to the dead letters: the error's stable code and its text."""

    code: str
    reason: str

    @classmethod
    def of(cls, error: LearnloopError) -> Refusal:
        where = f" ({error.field})" if error.field else ""
        return cls(error.code, f"{error.message}{where}")


Outcome = Refusal | None


class StreamIntake:
    def __init__(
        self,
        feedback: FeedbackService,
        predictions: PredictionService,
        generations: GenerationLog,
        ingest: IngestWriter,
        *,
        max_items: int,
    ) -> None:
        self.feedback = feedback
        self.predictions = predictions
        self.generations = generations
        self.ingest = ingest
        self.max_items = max_items

    async def handle(self, messages: Sequence[bytes]) -> list[Outcome]:
        outcomes: list[Outcome] = [None] * len(messages)
        parsed: list[tuple[int, Message]] = []
        for i, data in enumerate(messages):
            try:
                parsed.append((i, parse_envelope(data)))
            except LearnloopError as exc:
                outcomes[i] = Refusal.of(exc)
        for (kind, model), group in groupby(parsed, key=lambda p: (p[1].type, p[1].model)):
            run = list(group)
            for start in range(0, len(run), self.max_items):
                chunk = run[start : start + self.max_items]
                try:
                    results = await self._run(kind, model, [e for _, e in chunk])
                except OverloadedError:
                    raise
                except LearnloopError as exc:  # the whole run refused (an unknown model, a wrong task)
                    results = [Refusal.of(exc)] * len(chunk)
                for (i, _), outcome in zip(chunk, results, strict=True):
                    outcomes[i] = outcome
        return outcomes

    async def _run(self, kind: str, model: str, events: list[Message]) -> list[Outcome]:
        if kind == "feedback":
            return await self._feedback(model, events)
        return await self._answers(kind, model, events)

    async def _feedback(self, model: str, events: list[Message]) -> list[Outcome]:
        items = [e.feedback_item for e in events]
        results = await self.feedback.record_many(model, items)
        assert results is not None  # no ``proceed`` was given
        return [_feedback_outcome(r.error) for r in results]

    async def _answers(self, kind: str, model: str, events: list[Message]) -> list[Outcome]:
        """Predictions and generations, logged under the ids their events carry; an id logged
        already (a redelivery) or repeated in this run is not logged again."""
        outcomes: list[Outcome] = [None] * len(events)
        logged = await asyncio.to_thread(self.ingest.logged_prediction_ids, [e.id for e in events])
        todo: dict[str, int] = {}
        for i, e in enumerate(events):
            if e.id not in logged:
                todo.setdefault(e.id, i)
        fresh = list(todo.values())
        if not fresh:
            return outcomes
        if kind == "generation":
            results = await self.generations.log_many(
                model, [events[i].event for i in fresh], [events[i].id for i in fresh]
            )
            for i, result in zip(fresh, results, strict=True):
                outcomes[i] = Refusal.of(result.error) if result.error is not None else None
            return outcomes
        return await self._predictions(model, events, fresh, outcomes)

    async def _predictions(
        self, model: str, events: list[Message], fresh: list[int], outcomes: list[Outcome]
    ) -> list[Outcome]:
        requests: dict[int, PredictRequest] = {}
        for i in fresh:
            try:
                requests[i] = PredictRequest.model_validate(events[i].event)
            except PydanticValidationError as exc:
                outcomes[i] = Refusal.of(_pydantic_error(exc))
        while requests:  # an item the service refuses is set aside and the rest sent again
            order = list(requests)
            try:
                _, committed = self.predictions.answer_many(
                    model,
                    [requests[i].text for i in order],
                    [requests[i].subject for i in order],
                    [events[i].id for i in order],
                    metadata=[requests[i].metadata for i in order],
                )
            except ValidationError as exc:
                culprit = _item_index(exc)
                if culprit is None:
                    raise
                outcomes[order[culprit]] = Refusal.of(exc)
                del requests[order[culprit]]
                continue
            if committed is not None:
                await asyncio.wrap_future(committed)
            break
        return outcomes


def _feedback_outcome(error: LearnloopError | None) -> Outcome:
    if error is None or (isinstance(error, DuplicateInBatchError) and error.same):
        return None  # stored, stored before, or the same event twice in one batch
    return Refusal.of(error)


def _item_index(error: ValidationError) -> int | None:
    """The batch item a service's error names (``items.3.text``), if any."""
    parts = (error.field or "").split(".")
    if len(parts) >= 2 and parts[0] == "items" and parts[1].isdigit():
        return int(parts[1])
    return None


def _pydantic_error(exc: PydanticValidationError) -> ValidationError:
    first: Any = exc.errors()[0]
    field = "event." + ".".join(str(p) for p in first["loc"])
    return ValidationError(f"{field}: {first['msg']}", field=field)
