"""Predictions and feedback: the request path of the loop."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from learnloop.clock import Clock
from learnloop.config import Limits
from learnloop.domain import Feedback
from learnloop.errors import LearnloopError, ValidationError
from learnloop.feedback.ingest import IngestWriter
from learnloop.feedback.intake import FeedbackInput, check_text, hash_subject, to_row
from learnloop.ids import new_id
from learnloop.monitoring.metrics import Metrics
from learnloop.routing.cache import ModelCache
from learnloop.store import repositories as repo
from learnloop.store.db import Database


@dataclass(frozen=True)
class PredictionResult:
    prediction_id: str
    model: str
    version: int
    label: str
    probabilities: dict[str, float]


class PredictionService:
    def __init__(
        self,
        cache: ModelCache,
        ingest: IngestWriter,
        clock: Clock,
        metrics: Metrics,
        limits: Limits,
    ) -> None:
        self.cache = cache
        self.ingest = ingest
        self.clock = clock
        self.metrics = metrics
        self.limits = limits

    def predict(self, model: str, text: str, subject: str | None = None) -> PredictionResult:
        check_text(text, self.limits.max_text_chars)
        champion = self.cache.champion(model)
        started = time.perf_counter()
        label, probabilities = champion.predictor.predict_one(text)
        latency_ms = (time.perf_counter() - started) * 1000
        result = PredictionResult(new_id(), model, champion.version, label, probabilities)
        self._log(result, text, subject, latency_ms)
        return result

    def predict_many(
        self, model: str, texts: Sequence[str], subjects: Sequence[str | None] | None = None
    ) -> list[PredictionResult]:
        if len(texts) > self.limits.max_batch_items:
            raise ValidationError(
                f"batch has {len(texts)} items; the limit is {self.limits.max_batch_items}",
                field="items",
            )
        for i, text in enumerate(texts):
            check_text(text, self.limits.max_text_chars, field=f"items.{i}.text")
        champion = self.cache.champion(model)
        if not texts:
            return []
        started = time.perf_counter()
        proba = champion.predictor.predict_proba(list(texts))
        latency_ms = (time.perf_counter() - started) * 1000 / len(texts)
        labels = champion.predictor.labels
        results = []
        for i, (text, row) in enumerate(zip(texts, proba, strict=True)):
            probabilities = {lab: float(p) for lab, p in zip(labels, row, strict=True)}
            result = PredictionResult(new_id(), model, champion.version, labels[int(row.argmax())], probabilities)
            self._log(result, text, subjects[i] if subjects else None, latency_ms)
            results.append(result)
        return results

    def _log(self, result: PredictionResult, text: str, subject: str | None, latency_ms: float) -> None:
        self.ingest.log_prediction(
            {
                "id": result.prediction_id,
                "model": result.model,
                "version": result.version,
                "route": "champion",
                "text": text,
                "label": result.label,
                "probabilities": orjson.dumps(result.probabilities).decode(),
                "subject": hash_subject(subject),
                "created_at": self.clock.now(),
                "latency_ms": latency_ms,
            }
        )
        self.metrics.predictions.labels(result.model, str(result.version), "champion").inc()


@dataclass(frozen=True)
class ItemResult:
    """One item of a batch: the stored event, or the error that refused it."""

    feedback: Feedback | None
    error: LearnloopError | None


class FeedbackService:
    def __init__(
        self,
        db: Database,
        cache: ModelCache,
        ingest: IngestWriter,
        clock: Clock,
        metrics: Metrics,
        limits: Limits,
    ) -> None:
        self.db = db
        self.cache = cache
        self.ingest = ingest
        self.clock = clock
        self.metrics = metrics
        self.limits = limits

    def _rows(self, model: str, items: Sequence[FeedbackInput]) -> list[dict[str, Any] | LearnloopError]:
        spec = self.cache.route(model).model
        now = self.clock.now()
        out: list[dict[str, Any] | LearnloopError] = []
        for item in items:
            try:
                out.append(
                    to_row(
                        spec,
                        item,
                        now,
                        max_text_chars=self.limits.max_text_chars,
                        max_metadata_bytes=self.limits.max_metadata_bytes,
                    )
                )
            except LearnloopError as exc:
                out.append(exc)
        return out

    async def record(self, model: str, item: FeedbackInput) -> Feedback:
        (row,) = self._rows(model, [item])
        if isinstance(row, LearnloopError):
            raise row
        (stored,) = await self.ingest.submit_feedback_async([row])
        self.metrics.feedback.labels(model, stored.kind.value).inc()
        return stored

    async def record_many(self, model: str, items: Sequence[FeedbackInput]) -> list[ItemResult]:
        if len(items) > self.limits.max_batch_items:
            raise ValidationError(
                f"batch has {len(items)} items; the limit is {self.limits.max_batch_items}",
                field="items",
            )
        rows = self._rows(model, items)
        valid = [r for r in rows if not isinstance(r, LearnloopError)]
        stored = iter(await self.ingest.submit_feedback_async(valid) if valid else [])
        results = []
        for r in rows:
            if isinstance(r, LearnloopError):
                results.append(ItemResult(None, r))
            else:
                fb = next(stored)
                self.metrics.feedback.labels(model, fb.kind.value).inc()
                results.append(ItemResult(fb, None))
        return results

    def record_sync(self, model: str, items: Sequence[FeedbackInput]) -> list[Feedback]:
        """For the CLI and scripts: all-or-nothing validation, then one durable write."""
        rows = self._rows(model, items)
        errors = [r for r in rows if isinstance(r, LearnloopError)]
        if errors:
            raise errors[0]
        return self.ingest.submit_feedback([r for r in rows if isinstance(r, dict)]).result()

    def get(self, model: str, feedback_id: str) -> Feedback:
        self.cache.route(model)
        with self.db.read() as conn:
            return repo.get_feedback(conn, model, feedback_id)


def prediction_json(result: PredictionResult) -> bytes:
    return orjson.dumps(
        {
            "prediction_id": result.prediction_id,
            "model": result.model,
            "version": result.version,
            "label": result.label,
            "probabilities": result.probabilities,
        }
    )
