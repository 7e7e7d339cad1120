"""Predictions and feedback: the request path of the loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import orjson

from learnloop.clock import Clock
from learnloop.config import Limits
from learnloop.curation.pii import scrub_text
from learnloop.domain import Feedback, FeedbackEvent, FeedbackInput
from learnloop.errors import (
    ConflictError,
    IdempotencyConflictError,
    LearnloopError,
    OverloadedError,
    ValidationError,
    WrongTaskError,
)
from learnloop.families.base import BatchedPrediction
from learnloop.feedback.ingest import IngestWriter
from learnloop.feedback.intake import (
    check_prediction_metadata,
    check_text,
    flag_repeated_keys,
    hash_subject,
    is_pair,
    pair_error,
    same_event,
    to_row,
)
from learnloop.feedback.items import parse_item
from learnloop.feedback.reports import GenerationReport, generation_report
from learnloop.ids import new_id
from learnloop.registry.specs import ModelSpecs
from learnloop.routing.batching import PredictionBatcher
from learnloop.routing.cache import LoadedVersion, ModelCache, Route
from learnloop.routing.shadow import ShadowRunner
from learnloop.store.db import Database
from learnloop.store.repositories import events as event_repo
from learnloop.store.repositories import feedback as feedback_repo
from learnloop.store.repositories import predictions as prediction_repo
from learnloop.store.repositories import snapshots as snapshot_repo
from learnloop.tasks.classification import ClassAnswer
from learnloop.telemetry import Metrics

log = logging.getLogger(__name__)

VALIDATE_IN_THREAD_ITEMS = 32  # feedback batches larger than this are parsed and checked off the event loop


Metadata = dict[str, Any]


@dataclass(frozen=True)
class PredictionResult:
    prediction_id: str
    model: str
    version: int
    label: str
    probabilities: dict[str, float]
    route: str = "champion"


# One answer to log: the result, the stored text, the subject, the latency, the metadata.
Logged = tuple[PredictionResult, str, str | None, float, Metadata | None]


def stored_answer(result: PredictionResult, metadata: Metadata | None) -> dict[str, Any]:
    """The answer as logged; the metadata beside it, as a generation's is (never a feature)."""
    answer = ClassAnswer(result.label, result.probabilities).to_answer()
    if metadata:
        answer["metadata"] = metadata
    return answer


@dataclass
class _Asked:
    """One prediction request on its way: where it goes, and who answers it."""

    model: str
    route: Route
    prediction_id: str
    key: str  # what the route's split and a shadow's sample hash: the subject, else the id
    subject: str | None
    metadata: Metadata | None
    served: LoadedVersion
    route_name: str


class PredictionService:
    """Answers with the version the route picks for the request (champion, or an arm of a
    canary or A/B test, sticky per subject), hands a copy to a shadow when one runs, and logs
    every answer. A challenger that fails is answered for by the champion (route
    ``fallback``, counted by the rollout's error guardrail): a canary never fails a request."""

    def __init__(
        self,
        cache: ModelCache,
        ingest: IngestWriter,
        clock: Clock,
        metrics: Metrics,
        limits: Limits,
        shadow: ShadowRunner | None = None,
        batcher: PredictionBatcher | None = None,
    ) -> None:
        self.batcher = batcher or PredictionBatcher(limits.prediction_batch)
        self.cache = cache
        self.ingest = ingest
        self.clock = clock
        self.metrics = metrics
        self.limits = limits
        self.shadow = shadow

    def predict(
        self, model: str, text: str, subject: str | None = None, metadata: Metadata | None = None
    ) -> PredictionResult:
        """Answer, log the answer, and (durable prediction log) wait until it is committed."""
        result, committed = self.answer(model, text, subject, metadata)
        if committed is not None:
            committed.result()
        return result

    async def predict_async(
        self, model: str, text: str, subject: str | None = None, metadata: Metadata | None = None
    ) -> PredictionResult:
        """``predict`` for the event loop: a durable log's commit is awaited, not blocked on; a
        version whose predictor batches (``BatchedPrediction``) answers with the requests that
        wait beside this one, off the event loop (``routing.batching``)."""
        asked = self._ask(model, text, subject, metadata)
        started = time.perf_counter()
        try:
            label, probabilities = await self._predict_one_async(asked.served, text)
        except Exception as exc:
            asked.served, asked.route_name = self._fallback(asked.route, asked.served, asked.route_name, exc)
            started = time.perf_counter()
            label, probabilities = await self._predict_one_async(asked.served, text)
        result, committed = self._answered(asked, text, label, probabilities, started)
        if committed is not None:
            await asyncio.wrap_future(committed)
        return result

    async def _predict_one_async(self, served: LoadedVersion, text: str) -> tuple[str, dict[str, float]]:
        predictor = served.classifier
        if isinstance(predictor, BatchedPrediction):
            return await self.batcher.predict_one(predictor, text)
        return predictor.predict_one(text)

    def answer(
        self, model: str, text: str, subject: str | None = None, metadata: Metadata | None = None
    ) -> tuple[PredictionResult, Future[None] | None]:
        """The answer, queued for the log; with a durable log, also the future of its commit.
        ``metadata`` (group attributes such as a region, flat and bounded) is stored with the
        answer for fairness reports and slices; the model never sees it."""
        asked = self._ask(model, text, subject, metadata)
        started = time.perf_counter()
        try:
            label, probabilities = asked.served.classifier.predict_one(text)
        except Exception as exc:
            asked.served, asked.route_name = self._fallback(asked.route, asked.served, asked.route_name, exc)
            started = time.perf_counter()
            label, probabilities = asked.served.classifier.predict_one(text)
        return self._answered(asked, text, label, probabilities, started)

    def _ask(self, model: str, text: str, subject: str | None, metadata: Metadata | None) -> _Asked:
        """The request checked, and the version its route picks to answer it."""
        check_text(text, self.limits.max_text_chars)
        if metadata is not None:
            check_prediction_metadata(metadata, self.limits)
        route = self._classifier_route(model)
        prediction_id = new_id()
        key = subject if subject is not None else prediction_id
        served, route_name = route.pick(key)
        return _Asked(model, route, prediction_id, key, subject, metadata, served, route_name)

    def _answered(
        self, asked: _Asked, text: str, label: str, probabilities: dict[str, float], started: float
    ) -> tuple[PredictionResult, Future[None] | None]:
        """The answer logged (and copied to a shadow): the result, and a durable log's commit."""
        latency_ms = (time.perf_counter() - started) * 1000
        result = PredictionResult(
            asked.prediction_id, asked.model, asked.served.version, label, probabilities, asked.route_name
        )
        stored = scrub_text(text, asked.route.model.policy.curation.pii_scrub)
        committed = self._log([(result, stored, asked.subject, latency_ms, asked.metadata)])
        self._copy_to_shadow(asked.route, asked.key, result, text)
        return result, committed

    def _classifier_route(self, model: str) -> Route:
        route = self.cache.route(model)
        if route.model.task != "classification":
            raise WrongTaskError(
                f"model {model!r} generates text: ask it with POST /v1/models/{model}/generate, or log answers "
                f"made elsewhere with POST /v1/models/{model}/generations",
                field="model",
            )
        return route

    def _fallback(
        self, route: Route, served: LoadedVersion, route_name: str, exc: Exception
    ) -> tuple[LoadedVersion, str]:
        """The champion answers for a challenger that raised; anything else re-raises. A full
        batcher (``OverloadedError``) is no failure of the challenger: the request is refused
        (503), not answered by the champion nor counted against the canary."""
        if route_name != "canary" or route.champion is None or isinstance(exc, OverloadedError):
            raise exc
        log.error(
            "model %s: challenger version %s failed (%r); the champion answers", route.model.name, served.version, exc
        )
        self.metrics.canary_fallbacks.labels(route.model.name).inc()
        return route.champion, "fallback"

    def _copy_to_shadow(self, route: Route, key: str, result: PredictionResult, text: str) -> None:
        if self.shadow is None:
            return
        live = route.shadow_for(key)
        if live is not None:
            self.shadow.submit(live, result.model, result.prediction_id, text, self.clock.now())

    def predict_many(
        self,
        model: str,
        texts: Sequence[str],
        subjects: Sequence[str | None] | None = None,
        metadata: Sequence[Metadata | None] | None = None,
    ) -> list[PredictionResult]:
        results, committed = self.answer_many(model, texts, subjects, metadata=metadata)
        if committed is not None:
            committed.result()
        return results

    async def predict_many_async(
        self,
        model: str,
        texts: Sequence[str],
        subjects: Sequence[str | None] | None = None,
        metadata: Sequence[Metadata | None] | None = None,
    ) -> list[PredictionResult]:
        results, committed = self.answer_many(model, texts, subjects, metadata=metadata)
        if committed is not None:
            await asyncio.wrap_future(committed)
        return results

    def answer_many(
        self,
        model: str,
        texts: Sequence[str],
        subjects: Sequence[str | None] | None = None,
        ids: Sequence[str] | None = None,
        metadata: Sequence[Metadata | None] | None = None,
    ) -> tuple[list[PredictionResult], Future[None] | None]:
        """The answers, queued for the log. ``ids`` names them (a stream consumer whose events
        carry their prediction ids); by default each gets a new one. ``metadata``: each item's,
        as in ``answer``."""
        if len(texts) > self.limits.max_batch_items:
            raise ValidationError(
                f"batch has {len(texts)} items; the limit is {self.limits.max_batch_items}",
                field="items",
            )
        for i, text in enumerate(texts):
            check_text(text, self.limits.max_text_chars, field=f"items.{i}.text")
        metas = list(metadata) if metadata is not None else [None] * len(texts)
        for i, meta in enumerate(metas):
            if meta is not None:
                check_prediction_metadata(meta, self.limits, field=f"items.{i}.metadata")
        route = self._classifier_route(model)
        ids = list(ids) if ids is not None else [new_id() for _ in texts]
        keys = [s if s is not None else i for s, i in zip(subjects or [None] * len(texts), ids, strict=True)]
        arms: dict[tuple[int, str], tuple[LoadedVersion, list[int]]] = {}
        for i, key in enumerate(keys):
            served, route_name = route.pick(key)
            arms.setdefault((served.version, route_name), (served, []))[1].append(i)
        results: list[PredictionResult | None] = [None] * len(texts)
        logged: list[Logged] = []
        for (_, route_name), (served, indices) in arms.items():
            started = time.perf_counter()
            try:
                proba = served.classifier.predict_proba([texts[i] for i in indices])
            except Exception as exc:
                served, route_name = self._fallback(route, served, route_name, exc)
                started = time.perf_counter()
                proba = served.classifier.predict_proba([texts[i] for i in indices])
            latency_ms = (time.perf_counter() - started) * 1000 / len(indices)
            labels = served.classifier.labels
            for i, row in zip(indices, proba, strict=True):
                probabilities = {lab: float(p) for lab, p in zip(labels, row, strict=True)}
                result = PredictionResult(
                    ids[i], model, served.version, labels[int(row.argmax())], probabilities, route_name
                )
                stored = scrub_text(texts[i], route.model.policy.curation.pii_scrub)
                logged.append((result, stored, subjects[i] if subjects else None, latency_ms, metas[i]))
                results[i] = result
        committed = self._log(logged)
        answered = [r for r in results if r is not None]
        for i, answer in enumerate(answered):
            self._copy_to_shadow(route, keys[i], answer, texts[i])
        return answered, committed

    def _log(self, answers: Sequence[Logged]) -> Future[None] | None:
        """Queue the answers' log rows (refused with 503 when the log is full); they count as
        served once queued, or once committed with a durable log."""
        now = self.clock.now()
        rows = [
            {
                "id": result.prediction_id,
                "model": result.model,
                "version": result.version,
                "route": result.route,
                "text": text,
                "answer": orjson.dumps(stored_answer(result, metadata)).decode(),
                "subject": hash_subject(subject),
                "created_at": now,
                "latency_ms": latency_ms,
            }
            for result, text, subject, latency_ms, metadata in answers
        ]
        committed = self.ingest.log_predictions(rows)
        results = [a[0] for a in answers]
        if committed is None:
            self._count_served(results)
        else:
            committed.add_done_callback(lambda f: None if f.exception() else self._count_served(results))
        return committed

    def _count_served(self, results: Sequence[PredictionResult]) -> None:
        for result in results:
            self.metrics.predictions.labels(result.model, str(result.version), result.route).inc()


@dataclass(frozen=True)
class ItemResult:
    """Item ``index`` of a batch: the stored event, or the error that refused it."""

    index: int
    feedback: Feedback | None
    error: LearnloopError | None

    @property
    def error_field(self) -> str | None:
        """The refused field, named within the batch (``items.3.label``)."""
        if self.error is None or self.error.field is None:
            return None
        return f"items.{self.index}.{self.error.field}"


@dataclass(frozen=True)
class Retraction:
    """A feedback event taken back, and the training snapshots that may already hold it (taken
    with a cutoff at or after it: the versions trained on them keep what they learned)."""

    feedback: Feedback
    in_snapshots: tuple[str, ...]


class FeedbackService:
    """Feedback intake, one path for every edge (HTTP, the CLI, a stream consumer): the item
    is parsed if it arrives raw, checked against its model's spec (``ModelSpecs``: no model is
    loaded) and the model's task, scrubbed, and acknowledged once committed. Refusals are
    counted by reason."""

    def __init__(
        self,
        db: Database,
        specs: ModelSpecs,
        ingest: IngestWriter,
        clock: Clock,
        metrics: Metrics,
        limits: Limits,
    ) -> None:
        self.db = db
        self.specs = specs
        self.ingest = ingest
        self.clock = clock
        self.metrics = metrics
        self.limits = limits

    def _rows(
        self, model: str, items: Sequence[FeedbackInput | Mapping[str, Any]]
    ) -> list[dict[str, Any] | LearnloopError]:
        spec = self.specs.get(model)
        now = self.clock.now()
        out: list[dict[str, Any] | LearnloopError] = []
        for item in items:
            try:
                parsed = item if isinstance(item, FeedbackInput) else parse_item(item)
                out.append(
                    to_row(
                        spec,
                        parsed,
                        now,
                        max_text_chars=self.limits.max_text_chars,
                        max_metadata_bytes=self.limits.max_metadata_bytes,
                        max_metadata_depth=self.limits.max_metadata_depth,
                    )
                )
            except LearnloopError as exc:
                out.append(exc)
        return out

    def _check_pairs(self, model: str, rows: list[dict[str, Any] | LearnloopError]) -> None:
        """Refuse in place a preference whose two answers are logged but are not two answers
        of ``model`` to one prompt (a database read: off the event loop). A preference with an
        answer not logged yet is kept (joined later; curation drops a pair that turns out
        mismatched)."""
        pairs = [(i, r) for i, r in enumerate(rows) if isinstance(r, dict) and is_pair(r)]
        if not pairs:
            return
        ids = [pid for _, r in pairs for pid in (r["prediction_id"], r["payload"]["rejected_prediction_id"])]
        with self.db.read() as conn:
            logged = prediction_repo.predictions_by_id(conn, ids)
        for i, r in pairs:
            error = pair_error(
                model, logged.get(r["prediction_id"]), logged.get(r["payload"]["rejected_prediction_id"])
            )
            if error is not None:
                rows[i] = error

    def _checked_rows(
        self, model: str, items: Sequence[FeedbackInput | Mapping[str, Any]]
    ) -> list[dict[str, Any] | LearnloopError]:
        rows = self._rows(model, items)
        self._check_pairs(model, rows)
        return rows

    def count_rejected(self, model: str, error: LearnloopError) -> None:
        """Feedback refused at intake is counted by reason (``learnloop_feedback_rejected``)."""
        self.metrics.feedback_rejected.labels(model, error.code).inc()

    async def record(self, model: str, item: FeedbackInput) -> Feedback:
        rows = self._rows(model, [item])
        if any(isinstance(r, dict) and is_pair(r) for r in rows):
            await asyncio.to_thread(self._check_pairs, model, rows)
        (row,) = rows
        if isinstance(row, LearnloopError):
            self.count_rejected(model, row)
            raise row
        (stored,) = await self.ingest.submit_feedback_async([row])
        outcome = self._settle(model, stored, row)
        if isinstance(outcome, LearnloopError):
            raise outcome
        self._count_stored(model, [outcome])
        return outcome

    async def record_many(
        self,
        model: str,
        items: Sequence[FeedbackInput | Mapping[str, Any]],
        *,
        proceed: Callable[[], Awaitable[bool]] | None = None,
    ) -> list[ItemResult] | None:
        """Each item stored or refused on its own (raw items are parsed here); one commit. A
        large batch is parsed and checked in a thread, so the event loop answers meanwhile;
        then ``proceed`` (is the client still there?) is asked before anything is stored:
        False stores nothing and answers None."""
        if len(items) > self.limits.max_batch_items:
            raise ValidationError(
                f"batch has {len(items)} items; the limit is {self.limits.max_batch_items}",
                field="items",
            )
        if len(items) > VALIDATE_IN_THREAD_ITEMS:
            rows = await asyncio.to_thread(self._checked_rows, model, items)
        else:
            rows = self._rows(model, items)
            if any(isinstance(r, dict) and is_pair(r) for r in rows):
                await asyncio.to_thread(self._check_pairs, model, rows)
        flag_repeated_keys(rows)
        if proceed is not None and not await proceed():
            return None
        valid = [r for r in rows if not isinstance(r, LearnloopError)]
        stored = iter(await self.ingest.submit_feedback_async(valid) if valid else [])
        results = []
        for index, r in enumerate(rows):
            outcome = r if isinstance(r, LearnloopError) else self._settle(model, next(stored), r)
            if isinstance(outcome, LearnloopError):
                if outcome is r:
                    self.count_rejected(model, outcome)
                results.append(ItemResult(index, None, outcome))
            else:
                results.append(ItemResult(index, outcome, None))
        self._count_stored(model, [r.feedback for r in results if r.feedback is not None])
        return results

    def _settle(self, model: str, stored: Feedback, row: dict[str, Any]) -> Feedback | LearnloopError:
        """The answer for one written row: the event stored, unless the row's client key named
        a different event already (``stored`` is then that first event). Not counted here:
        ``_count_stored`` counts a batch's events once per kind."""
        if stored.id != row["id"] and not same_event(stored, row):
            conflict = IdempotencyConflictError(row["client_id"], stored.id)
            self.count_rejected(model, conflict)
            return conflict
        return stored

    def _count_stored(self, model: str, stored: Iterable[Feedback]) -> None:
        """Events answered as stored, counted by kind (``learnloop_feedback``)."""
        for kind, n in Counter(fb.kind for fb in stored).items():
            self.metrics.feedback.labels(model, kind.value).inc(n)

    def record_sync(self, model: str, items: Sequence[FeedbackInput]) -> list[Feedback]:
        """For the CLI and scripts: all-or-nothing validation, then one durable write; a key
        that names a different stored event raises once the others are written."""
        rows = self._checked_rows(model, items)
        flag_repeated_keys(rows)
        errors = [r for r in rows if isinstance(r, LearnloopError)]
        if errors:
            raise errors[0]
        valid = [r for r in rows if isinstance(r, dict)]
        stored = self.ingest.submit_feedback(valid).result()
        outcomes = [self._settle(model, fb, row) for fb, row in zip(stored, valid, strict=True)]
        self._count_stored(model, [o for o in outcomes if not isinstance(o, LearnloopError)])
        for outcome in outcomes:
            if isinstance(outcome, LearnloopError):
                raise outcome
        return stored

    def get(self, model: str, feedback_id: str) -> Feedback:
        self.specs.get(model)  # NotFoundError for an unknown model
        with self.db.read() as conn:
            return feedback_repo.get_feedback(conn, model, feedback_id)

    def retract(
        self, model: str, feedback_id: str, *, subject: str | None, actor: str, reason: str | None = None
    ) -> Retraction:
        """Take back one feedback event (by the server's id or the client's key): a label given
        by mistake, the labelling page's undo. ``subject`` is who takes it back: only the subject
        who gave it may (``ConflictError`` otherwise); ``None`` is an operator, who may take back
        any. In one transaction the event is deleted and a ``feedback_retracted`` event records
        it (id, kind, answer, snapshots that may hold it; never the subject). From then on it
        counts nowhere: not in the next snapshot, the triggers' counts, the online statistics.
        A snapshot already taken is immutable (it names what a version saw): the versions
        trained on it are not retrained for one retraction (erasing a subject does that). The
        client's key is free again: a retried send stores the event anew. ``NotFoundError``
        for an unknown (or already retracted) event."""
        self.specs.get(model)  # NotFoundError for an unknown model
        now = self.clock.now()
        with self.db.write() as conn:
            fb = feedback_repo.get_feedback(conn, model, feedback_id)
            if subject is not None and fb.subject != hash_subject(subject):
                raise ConflictError(
                    f"feedback {fb.id} was given by another subject: only they may take it back", field="feedback_id"
                )
            snapshots = tuple(
                s.hash for s in snapshot_repo.list_snapshots(conn, model) if s.cutoff and s.cutoff >= fb.created_at
            )
            feedback_repo.delete_feedback(conn, [fb.id])
            event_repo.insert_event(
                conn,
                model=model,
                kind="feedback_retracted",
                at=now,
                actor=actor,
                reason=reason,
                data={
                    "feedback_id": fb.id,
                    "kind": fb.kind.value,
                    "prediction_id": fb.prediction_id,
                    "in_snapshots": list(snapshots),
                },
            )
        self.metrics.feedback_retracted.labels(model, fb.kind.value).inc()
        log.info("model %s: feedback %s (%s) retracted by %s", model, fb.id, fb.kind.value, actor)
        return Retraction(fb, snapshots)

    def recent(self, model: str, limit: int = 50) -> list[FeedbackEvent]:
        """The newest ``limit`` feedback events of ``model``, newest first, each with the answer
        it is about when that prediction is logged."""
        with self.db.read() as conn:
            return feedback_repo.recent_feedback(conn, model, limit)

    def on_answers(self, model: str, prediction_ids: Sequence[str]) -> list[FeedbackEvent]:
        """Every feedback event on the given logged answers of ``model``, newest first."""
        with self.db.read() as conn:
            return feedback_repo.feedback_on(conn, model, prediction_ids)

    def generation_report(self, model: str) -> GenerationReport:
        """A generative model's feedback summed up and curated up to now (``reports``)."""
        return generation_report(self.db, self.specs.get(model), self.clock.now())


def prediction_json(result: PredictionResult) -> bytes:
    return orjson.dumps(
        {
            "prediction_id": result.prediction_id,
            "model": result.model,
            "version": result.version,
            "label": result.label,
            "probabilities": result.probabilities,
            "route": result.route,
        }
    )
