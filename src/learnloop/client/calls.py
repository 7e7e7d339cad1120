"""Each API call as a plain description (method, path, body, how to read the answer, whether
sending it twice is harmless), shared by ``Client`` and ``AsyncClient``; and what the caller
passes in (typed dicts, as the JSON bodies are)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypedDict, TypeVar
from urllib.parse import quote

from learnloop.client import reports
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

T = TypeVar("T")


class FeedbackFields(TypedDict, total=False):
    """One feedback event, as ``POST /v1/models/{model}/feedback`` takes it. Which fields make
    an event depends on the task: a classifier takes ``label``, ``thumbs``, ``rating`` or an
    implicit ``signal`` and ``value``; a generative model ``rating``, ``thumbs``, ``correction``,
    or a preference (``chosen_prediction_id`` over ``rejected_prediction_id``, or a standalone
    ``prompt`` with ``chosen`` and ``rejected`` texts). ``text`` without a prediction is a
    labelled example. ``feedback_id`` is the idempotency key: the client makes one when it is
    left out."""

    label: str
    thumbs: Literal["up", "down"]
    rating: int
    text: str
    correction: str
    chosen_prediction_id: str
    rejected_prediction_id: str
    prompt: str
    chosen: str
    rejected: str
    strength: float
    signal: str
    value: bool | float
    subject: str
    metadata: dict[str, Any]
    feedback_id: str


class FeedbackItem(FeedbackFields, total=False):
    """An item of ``feedback_batch``: the event and the prediction it is about."""

    prediction_id: str


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


class Usage(TypedDict, total=False):
    prompt_tokens: int
    completion_tokens: int


class GenerateOptions(TypedDict, total=False):
    """What ``generate`` takes beside the prompt: the conversation instead of a prompt, and
    sampling settings (unset: the server's defaults, capped by the model's policy)."""

    messages: Sequence[ChatMessage]
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int
    subject: str
    metadata: dict[str, Any]


class GenerationDetails(TypedDict, total=False):
    """What ``log_generation`` takes beside the response: the ``prompt`` or the ``messages``
    answered (one of them), who answered and how."""

    prompt: str
    messages: Sequence[ChatMessage]
    source_model: str
    usage: Usage
    latency_ms: float
    finish_reason: str
    subject: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request: ``resend_safe`` when sending it again after an unclear failure (a timeout
    while waiting for the answer) cannot do its work twice (a read, or feedback with its
    idempotency key)."""

    method: str
    path: str
    read: Callable[[Any], T]
    body: Any = None
    params: Mapping[str, str | int] | None = None
    resend_safe: bool = False

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def new_feedback_id() -> str:
    """A fresh idempotency key for one feedback event: every retry of the event sends it, and
    the server stores the event once."""
    return str(uuid.uuid4())


def with_feedback_id(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as sent: its own ``feedback_id``, else a new one."""
    return {**event, "feedback_id": event.get("feedback_id") or new_feedback_id()}


def _model(model: str) -> str:
    return f"/v1/models/{quote(model, safe='')}"


def _present(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _read(path: str, read: Callable[[Any], T], params: Mapping[str, str | int] | None = None) -> Call[T]:
    """A GET: safe to send again."""
    return Call("GET", path, read, params=params, resend_safe=True)


# A request's attributes (group fields for fairness reports; never a feature): flat scalars.
Metadata = Mapping[str, str | int | float | bool | None]


def predict(model: str, text: str, subject: str | None, metadata: Metadata | None = None) -> Call[Prediction]:
    body = _present(text=text, subject=subject, metadata=None if metadata is None else dict(metadata))
    return Call("POST", f"{_model(model)}/predict", Prediction.model_validate, body)


def predict_batch(
    model: str,
    texts: Sequence[str],
    subjects: Sequence[str | None] | None,
    metadata: Sequence[Metadata | None] | None = None,
) -> Call[list[Prediction]]:
    if isinstance(texts, str):
        raise TypeError("predict_batch takes a sequence of texts, not one string (use predict)")
    if subjects is not None and len(subjects) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(subjects)} subjects")
    if metadata is not None and len(metadata) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(metadata)} metadata")
    who = subjects if subjects is not None else [None] * len(texts)
    about = metadata if metadata is not None else [None] * len(texts)
    items = [
        _present(text=text, subject=subject, metadata=None if meta is None else dict(meta))
        for text, subject, meta in zip(texts, who, about, strict=True)
    ]
    return Call("POST", f"{_model(model)}/predict/batch", _predictions, {"items": items})


def _predictions(body: Any) -> list[Prediction]:
    return [Prediction.model_validate(item) for item in body["items"]]


def feedback(model: str, prediction_id: str | None, event: FeedbackFields) -> Call[Feedback]:
    body = with_feedback_id(_present(prediction_id=prediction_id, **event))
    return Call("POST", f"{_model(model)}/feedback", Feedback.model_validate, body, resend_safe=True)


def feedback_batch(model: str, events: Sequence[FeedbackItem]) -> Call[FeedbackBatchResult]:
    body = {"items": [with_feedback_id(event) for event in events]}
    return Call("POST", f"{_model(model)}/feedback/batch", FeedbackBatchResult.model_validate, body, resend_safe=True)


def retract_feedback(model: str, feedback_id: str, reason: str | None) -> Call[FeedbackRetracted]:
    path = f"{_model(model)}/feedback/{quote(feedback_id, safe='')}"
    return Call("DELETE", path, FeedbackRetracted.model_validate, params=_present(reason=reason))


def ask(model: str, limit: int, strategy: str, window: int) -> Call[AskResult]:
    params: dict[str, str | int] = {"limit": limit, "strategy": strategy, "window": window}
    return _read(f"{_model(model)}/ask", AskResult.model_validate, params)


def status(model: str) -> Call[ModelStatus]:
    return _read(_model(model), ModelStatus.model_validate)


def retrain(model: str, reason: str | None) -> Call[JobAccepted]:
    return Call("POST", f"{_model(model)}/retrain", JobAccepted.model_validate, _present(reason=reason))


def job(job_id: str) -> Call[Job]:
    return _read(_job(job_id), Job.model_validate)


def job_action(job_id: str, action: Literal["pause", "resume", "cancel"], reason: str | None) -> Call[Job]:
    """Pause, resume or cancel a job (not sent again after an unclear failure: the second would be a 409)."""
    return Call("POST", f"{_job(job_id)}/{action}", Job.model_validate, _present(reason=reason))


def _job(job_id: str) -> str:
    return f"/v1/jobs/{quote(job_id, safe='')}"


def fairness(model: str, fields: Sequence[str] | None) -> Call[reports.Fairness]:
    if isinstance(fields, str):
        raise TypeError("fields is a sequence of field names, not one string")
    params = {"fields": ",".join(fields)} if fields else None
    return _read(f"{_model(model)}/fairness", reports.Fairness.model_validate, params)


def explain_prediction(model: str, prediction_id: str) -> Call[reports.Explanation]:
    path = f"{_model(model)}/predictions/{quote(prediction_id, safe='')}/explain"
    return _read(path, reports.Explanation.model_validate)


def explain_text(model: str, text: str, version: int | None) -> Call[reports.Explanation]:
    body = _present(text=text, version=version)  # nothing is logged: harmless twice
    return Call("POST", f"{_model(model)}/explain", reports.Explanation.model_validate, body, resend_safe=True)


def weights(model: str, version: int, top: int) -> Call[reports.VersionWeights]:
    return _read(f"{_model(model)}/versions/{version}/weights", reports.VersionWeights.model_validate, {"top": top})


def weight_changes(model: str, a: int, b: int, top: int) -> Call[reports.WeightsDiff]:
    return _read(f"{_model(model)}/weights/changes", reports.WeightsDiff.model_validate, {"a": a, "b": b, "top": top})


def error_patterns(model: str, version: int | None, window: int | None) -> Call[reports.ErrorPatterns]:
    params = _present(version=version, window=window)
    return _read(f"{_model(model)}/error-patterns", reports.ErrorPatterns.model_validate, params)


def check_error_patterns(model: str) -> Call[reports.ErrorPatternCheck]:
    return Call("POST", f"{_model(model)}/error-patterns/check", reports.ErrorPatternCheck.model_validate)


def retrain_value(model: str) -> Call[reports.ValueReport]:
    return _read(f"{_model(model)}/retrains/value", reports.ValueReport.model_validate)


def generate(model: str, prompt: str | None, options: GenerateOptions) -> Call[Generation]:
    body = _conversation({"prompt": prompt, **options})
    return Call("POST", f"{_model(model)}/generate", Generation.model_validate, body)


def log_generation(model: str, response: str, details: GenerationDetails) -> Call[LoggedGeneration]:
    body = _conversation({**details, "response": response})
    return Call("POST", f"{_model(model)}/generations", LoggedGeneration.model_validate, body)


def _conversation(body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` without its unset fields; it must name a ``prompt`` or ``messages``, not both."""
    present = _present(**body)
    if ("prompt" in present) == ("messages" in present):
        raise ValueError("give either a prompt or messages")
    if "messages" in present:
        present["messages"] = [dict(m) for m in present["messages"]]
    return present
