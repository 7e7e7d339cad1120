"""``Client``: the blocking Python client of a learnloop server."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TypeVar, Unpack

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
from learnloop.retry import RetryPolicy

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8000"
USER_AGENT = "learnloop-client/1"


def http_options(
    base_url: str, api_key: str | None, timeout: float | httpx.Timeout, headers: dict[str, str] | None
) -> dict[str, Any]:
    """What ``httpx.Client`` and ``httpx.AsyncClient`` are opened with: the API key (argument,
    else ``LEARNLOOP_API_KEY``) goes in ``X-API-Key``, as the server reads it."""
    key = api_key if api_key is not None else os.environ.get("LEARNLOOP_API_KEY") or None
    sent = {"User-Agent": USER_AGENT, **(headers or {})}
    if key:
        sent["X-API-Key"] = key
    return {"base_url": base_url.rstrip("/"), "timeout": timeout, "headers": sent}


class Client:
    """A learnloop server, called from Python: predictions, feedback, the answers worth a label,
    a model's status, generation, jobs (pause, resume, cancel), and the analytics (fairness,
    explanations and weights, error patterns, the value of retrains). Every method returns a
    typed, read-only result and raises
    ``APIError`` (with the server's problem ``code``, ``title``, ``detail``, ``status``) or
    ``TransportError``; 429 and 503 answers are retried with backoff, honouring Retry-After
    (``learnloop.client.sending`` says which calls are retried when).

    Example (a server from ``learnloop serve`` with a model ``sentiment``)::

        from learnloop import Client

        with Client("http://127.0.0.1:8000") as client:
            p = client.predict("sentiment", "The battery died after a day.")
            print(p.label, p.probabilities)
            client.feedback("sentiment", p.prediction_id, label="negative")

    ``api_key`` (default: ``LEARNLOOP_API_KEY``) is sent as ``X-API-Key``: once the server has
    keys, every call needs one with its scope (``predict``, ``feedback``, ``read``, ``label``;
    ``retrain``, ``retract_feedback``, the job actions and ``check_error_patterns`` need
    ``admin``). ``timeout`` is in seconds per request (or an ``httpx.Timeout``), ``retry`` the
    ``RetryPolicy``, ``transport`` an ``httpx`` transport (tests, proxies).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(transport=transport, **http_options(base_url, api_key, timeout, headers))
        self._retrying = Retrying(retry)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = self._http.request(call.method, call.path, json=call.body, params=call.params)
            except httpx.TransportError as exc:
                outcome = exc
            if isinstance(outcome, httpx.Response) and outcome.is_success:
                return read(call, outcome)
            time.sleep(self._retrying.wait(call, attempt, outcome))

    def predict(
        self, model: str, text: str, *, subject: str | None = None, metadata: calls.Metadata | None = None
    ) -> Prediction:
        """The model's answer to ``text``; ``subject`` (a user id, stored hashed) groups a
        user's answers and feedback; ``metadata`` (flat attributes such as ``{"region": "emea"}``)
        is stored with the answer for fairness reports, never used as a feature. Example::

            p = client.predict("sentiment", "Great value.")
            p.label, p.probabilities  # ('positive', {'negative': 0.08, 'positive': 0.92})
        """
        return self._send(calls.predict(model, text, subject, metadata))

    def predict_batch(
        self,
        model: str,
        texts: Sequence[str],
        *,
        subjects: Sequence[str | None] | None = None,
        metadata: Sequence[calls.Metadata | None] | None = None,
    ) -> list[Prediction]:
        """The answers to up to 1,000 texts at once, in order (``subjects``: one per text)."""
        return self._send(calls.predict_batch(model, texts, subjects, metadata))

    def feedback(self, model: str, prediction_id: str | None = None, **event: Unpack[FeedbackFields]) -> Feedback:
        """Record one feedback event about ``prediction_id`` (``label=``, ``thumbs=``,
        ``rating=``, ``correction=``, ...: see ``FeedbackFields``) and answer it as stored. The
        client gives the event a ``feedback_id`` unless you pass one, so its retries are
        stored once; pass your own to make a retry from another process safe too. Example::

            client.feedback("sentiment", p.prediction_id, label="positive")
            client.feedback("sentiment", p.prediction_id, thumbs="down", feedback_id="ui-click-8812")
        """
        return self._send(calls.feedback(model, prediction_id, event))

    def feedback_batch(self, model: str, events: Sequence[FeedbackItem]) -> FeedbackBatchResult:
        """Record many events (dicts with ``prediction_id`` and the fields of ``feedback``); each
        is stored or rejected on its own, with its reason, by its index. Example::

            r = client.feedback_batch("sentiment", [{"prediction_id": a, "label": "positive"},
                                                    {"prediction_id": b, "thumbs": "down"}])
            r.stored, [item.error for item in r.items if item.status == "rejected"]
        """
        return self._send(calls.feedback_batch(model, events))

    def ask(self, model: str, *, limit: int = 20, strategy: str = "margin", window: int = 1000) -> AskResult:
        """The champion's newest unlabelled answers most worth a label (``strategy`` margin or
        entropy, among the newest ``window``), most uncertain first. Example::

            for item in client.ask("sentiment", limit=5).items:
                client.feedback("sentiment", item.prediction_id, label=input(f"{item.text}? "))
        """
        return self._send(calls.ask(model, limit, strategy, window))

    def retract_feedback(self, model: str, feedback_id: str, *, reason: str | None = None) -> FeedbackRetracted:
        """Take back a feedback event given by mistake (admin: needs the API key), by the
        server's ``feedback_id`` or the client's; it counts nowhere from then on. Example::

            stored = client.feedback("reviews", p.prediction_id, label="positive")
            client.retract_feedback("reviews", stored.feedback_id, reason="wrong item")
        """
        return self._send(calls.retract_feedback(model, feedback_id, reason))

    def status(self, model: str) -> ModelStatus:
        """The model at a glance: champion, versions, running rollout, feedback counts, policy,
        the last retrain."""
        return self._send(calls.status(model))

    def retrain(self, model: str, *, reason: str | None = None) -> JobAccepted:
        """Queue a retrain now (admin: needs the API key); answers the job's id."""
        return self._send(calls.retrain(model, reason))

    def job(self, job_id: str) -> Job:
        """A job (a retrain, ...) by its id or a unique end of it: state, progress, outcome."""
        return self._send(calls.job(job_id))

    def pause_job(self, job_id: str, *, reason: str | None = None) -> Job:
        """Pause a queued or running job (admin): a running fit stops at its worker's next
        heartbeat and uses no CPU until resumed; a queued one is not started. Example::

            job = client.retrain("sentiment")
            client.pause_job(job.job_id, reason="not during the sale")
            client.resume_job(job.job_id)  # status running (its worker still holds it) or queued
        """
        return self._send(calls.job_action(job_id, "pause", reason))

    def resume_job(self, job_id: str, *, reason: str | None = None) -> Job:
        """Resume a paused job (admin); its ``message`` says whether it restarts from scratch."""
        return self._send(calls.job_action(job_id, "resume", reason))

    def cancel_job(self, job_id: str, *, reason: str | None = None) -> Job:
        """Cancel a queued, running or paused job (admin): nothing of its fit is registered."""
        return self._send(calls.job_action(job_id, "cancel", reason))

    def fairness(self, model: str, *, fields: Sequence[str] | None = None) -> reports.Fairness:
        """Per version, on the newest labelled feedback: each group's accuracy, selection and
        true-positive rates and the gaps between groups, with bootstrap intervals, for the
        policy's ``fairness_fields`` (or ``fields``: metadata keys given with predictions or
        feedback). Example::

            report = client.fairness("sentiment", fields=["region"])
            gap = report.versions[0].fields[0].largest  # e.g. demographic_parity 0.12 [0.03, 0.21]
        """
        return self._send(calls.fairness(model, fields))

    def explain(self, model: str, prediction_id: str) -> reports.Explanation:
        """Why a logged answer said what it did, by the version that gave it: each term's
        contribution to each label (exact for linear families, by occlusion otherwise) and
        the text's words with what each added to the answer. Example::

            e = client.explain("sentiment", p.prediction_id)
            [(t.text, round(t.contribution, 2)) for t in e.tokens]  # [('battery', -0.4), ...]
        """
        return self._send(calls.explain_prediction(model, prediction_id))

    def explain_text(self, model: str, text: str, *, version: int | None = None) -> reports.Explanation:
        """``explain`` for a text sent now, answered by the champion (or ``version``); nothing
        is logged (needs the ``predict`` scope)."""
        return self._send(calls.explain_text(model, text, version))

    def weights(self, model: str, version: int, *, top: int = 20) -> reports.VersionWeights:
        """A linear version's ``top`` strongest terms per label (409 ``not_supported`` for a
        family whose features are not terms)."""
        return self._send(calls.weights(model, version, top))

    def weight_changes(self, model: str, a: int, b: int, *, top: int = 20) -> reports.WeightsDiff:
        """Per label, the terms whose weight rose and fell most from version ``a`` to ``b``."""
        return self._send(calls.weight_changes(model, a, b, top))

    def error_patterns(
        self, model: str, *, version: int | None = None, window: int | None = None
    ) -> reports.ErrorPatterns:
        """Where the answers keep being corrected, over the newest ``window`` judged answers
        (every version's, or ``version``'s): clusters of corrected texts with their terms and
        examples, and slices whose error rate is significantly above the rest's."""
        return self._send(calls.error_patterns(model, version, window))

    def check_error_patterns(self, model: str) -> reports.ErrorPatternCheck:
        """Analyse now and write an ``error_pattern`` event for each pattern not reported
        before (admin); ``new`` holds those events' data."""
        return self._send(calls.check_error_patterns(model))

    def retrain_value(self, model: str) -> reports.ValueReport:
        """What each retrain cost (CPU, wall, memory) and what its promotion bought on live
        traffic, with intervals, at the model's prices; ``bought_nothing`` marks the rest."""
        return self._send(calls.retrain_value(model))

    def generate(self, model: str, prompt: str | None = None, **options: Unpack[GenerateOptions]) -> Generation:
        """A generative model's answer to ``prompt`` (or to the conversation ``messages=``),
        logged by the server; rate it by its ``prediction_id``. Sampling settings left out
        (``max_new_tokens``, ``temperature``, ``top_p``, ``seed``) take the server's defaults.
        Example::

            g = client.generate("npc", "Any rooms free tonight?", max_new_tokens=48, seed=7)
            client.feedback("npc", g.prediction_id, rating=5)
        """
        return self._send(calls.generate(model, prompt, options))

    def log_generation(self, model: str, response: str, **details: Unpack[GenerationDetails]) -> LoggedGeneration:
        """Log an answer made elsewhere (a model created with ``--backend external``): the
        ``response`` to ``prompt=`` (or ``messages=``); feedback on it names the returned
        ``prediction_id``. Example::

            reply = my_llm(question)
            logged = client.log_generation("npc", reply, prompt=question, source_model="claude-sonnet")
            client.feedback("npc", logged.prediction_id, thumbs="up")
        """
        return self._send(calls.log_generation(model, response, details))
