"""``AsyncClient``: the asyncio twin of ``Client``, method for method."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import TypeVar, Unpack

import httpx

from learnloop.client import calls, reports
from learnloop.client.calls import Call, FeedbackFields, FeedbackItem, GenerateOptions, GenerationDetails
from learnloop.client.results import (
    AskResult,
    Feedback,
    FeedbackBatchResult,
    FeedbackRetracted,
    Generation,
    Job,
    JobAccepted,
    LoggedGeneration,
    ModelStatus,
    Prediction,
)
from learnloop.client.sending import DEFAULT_RETRY, Retrying, read
from learnloop.client.sync import DEFAULT_URL, http_options
from learnloop.retry import RetryPolicy

T = TypeVar("T")


class AsyncClient:
    """``Client`` for asyncio: the same methods, arguments, results, errors and retries, each
    awaited (the waits between retries too). Example::

        from learnloop import AsyncClient

        async with AsyncClient("http://127.0.0.1:8000") as client:
            answers = await asyncio.gather(*(client.predict("sentiment", t) for t in texts))
            await client.feedback("sentiment", answers[0].prediction_id, label="positive")
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(transport=transport, **http_options(base_url, api_key, timeout, headers))
        self._retrying = Retrying(retry)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = await self._http.request(call.method, call.path, json=call.body, params=call.params)
            except httpx.TransportError as exc:
                outcome = exc
            if isinstance(outcome, httpx.Response) and outcome.is_success:
                return read(call, outcome)
            await asyncio.sleep(self._retrying.wait(call, attempt, outcome))

    async def predict(
        self, model: str, text: str, *, subject: str | None = None, metadata: calls.Metadata | None = None
    ) -> Prediction:
        """See ``Client.predict``."""
        return await self._send(calls.predict(model, text, subject, metadata))

    async def predict_batch(
        self,
        model: str,
        texts: Sequence[str],
        *,
        subjects: Sequence[str | None] | None = None,
        metadata: Sequence[calls.Metadata | None] | None = None,
    ) -> list[Prediction]:
        """See ``Client.predict_batch``."""
        return await self._send(calls.predict_batch(model, texts, subjects, metadata))

    async def feedback(self, model: str, prediction_id: str | None = None, **event: Unpack[FeedbackFields]) -> Feedback:
        """See ``Client.feedback``: a ``feedback_id`` is made for the event unless given."""
        return await self._send(calls.feedback(model, prediction_id, event))

    async def feedback_batch(self, model: str, events: Sequence[FeedbackItem]) -> FeedbackBatchResult:
        """See ``Client.feedback_batch``."""
        return await self._send(calls.feedback_batch(model, events))

    async def ask(self, model: str, *, limit: int = 20, strategy: str = "margin", window: int = 1000) -> AskResult:
        """See ``Client.ask``."""
        return await self._send(calls.ask(model, limit, strategy, window))

    async def status(self, model: str) -> ModelStatus:
        """See ``Client.status``."""
        return await self._send(calls.status(model))

    async def retract_feedback(self, model: str, feedback_id: str, *, reason: str | None = None) -> FeedbackRetracted:
        """See ``Client.retract_feedback``."""
        return await self._send(calls.retract_feedback(model, feedback_id, reason))

    async def retrain(self, model: str, *, reason: str | None = None) -> JobAccepted:
        """See ``Client.retrain``."""
        return await self._send(calls.retrain(model, reason))

    async def job(self, job_id: str) -> Job:
        """See ``Client.job``."""
        return await self._send(calls.job(job_id))

    async def pause_job(self, job_id: str, *, reason: str | None = None) -> Job:
        """See ``Client.pause_job``."""
        return await self._send(calls.job_action(job_id, "pause", reason))

    async def resume_job(self, job_id: str, *, reason: str | None = None) -> Job:
        """See ``Client.resume_job``."""
        return await self._send(calls.job_action(job_id, "resume", reason))

    async def cancel_job(self, job_id: str, *, reason: str | None = None) -> Job:
        """See ``Client.cancel_job``."""
        return await self._send(calls.job_action(job_id, "cancel", reason))

    async def fairness(self, model: str, *, fields: Sequence[str] | None = None) -> reports.Fairness:
        """See ``Client.fairness``."""
        return await self._send(calls.fairness(model, fields))

    async def explain(self, model: str, prediction_id: str) -> reports.Explanation:
        """See ``Client.explain``."""
        return await self._send(calls.explain_prediction(model, prediction_id))

    async def explain_text(self, model: str, text: str, *, version: int | None = None) -> reports.Explanation:
        """See ``Client.explain_text``."""
        return await self._send(calls.explain_text(model, text, version))

    async def weights(self, model: str, version: int, *, top: int = 20) -> reports.VersionWeights:
        """See ``Client.weights``."""
        return await self._send(calls.weights(model, version, top))

    async def weight_changes(self, model: str, a: int, b: int, *, top: int = 20) -> reports.WeightsDiff:
        """See ``Client.weight_changes``."""
        return await self._send(calls.weight_changes(model, a, b, top))

    async def error_patterns(
        self, model: str, *, version: int | None = None, window: int | None = None
    ) -> reports.ErrorPatterns:
        """See ``Client.error_patterns``."""
        return await self._send(calls.error_patterns(model, version, window))

    async def check_error_patterns(self, model: str) -> reports.ErrorPatternCheck:
        """See ``Client.check_error_patterns``."""
        return await self._send(calls.check_error_patterns(model))

    async def retrain_value(self, model: str) -> reports.ValueReport:
        """See ``Client.retrain_value``."""
        return await self._send(calls.retrain_value(model))

    async def generate(self, model: str, prompt: str | None = None, **options: Unpack[GenerateOptions]) -> Generation:
        """See ``Client.generate``."""
        return await self._send(calls.generate(model, prompt, options))

    async def log_generation(self, model: str, response: str, **details: Unpack[GenerationDetails]) -> LoggedGeneration:
        """See ``Client.log_generation``."""
        return await self._send(calls.log_generation(model, response, details))
