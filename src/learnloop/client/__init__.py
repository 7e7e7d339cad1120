"""The Python client of a learnloop server: ``Client`` (blocking) and ``AsyncClient``.

It talks HTTP only (httpx and pydantic; nothing of the server is imported), so it serves a
program that runs far from the server as well as beside it. See ``Client`` for an example.
"""

from learnloop.client.asynchronous import AsyncClient
from learnloop.client.calls import ChatMessage, FeedbackFields, FeedbackItem, GenerateOptions, GenerationDetails, Usage
from learnloop.client.errors import APIError, ClientError, TransportError
from learnloop.client.reports import (
    ErrorPattern,
    ErrorPatternCheck,
    ErrorPatterns,
    ErrorSlice,
    Explanation,
    Fairness,
    FairnessField,
    FairnessGap,
    FairnessGroup,
    RetrainValue,
    ValueReport,
    VersionFairness,
    VersionWeights,
    WeightsDiff,
)
from learnloop.client.results import (
    AskItem,
    AskResult,
    Deployment,
    Feedback,
    FeedbackBatchResult,
    FeedbackItemResult,
    FeedbackRetracted,
    Generation,
    ItemError,
    Job,
    JobAccepted,
    LoggedGeneration,
    ModelStatus,
    Prediction,
    Rollout,
    VersionSummary,
)
from learnloop.client.sending import DEFAULT_RETRY
from learnloop.client.sync import Client
from learnloop.retry import RetryPolicy

__all__ = [
    "DEFAULT_RETRY",
    "APIError",
    "AskItem",
    "AskResult",
    "AsyncClient",
    "ChatMessage",
    "Client",
    "ClientError",
    "Deployment",
    "ErrorPattern",
    "ErrorPatternCheck",
    "ErrorPatterns",
    "ErrorSlice",
    "Explanation",
    "Fairness",
    "FairnessField",
    "FairnessGap",
    "FairnessGroup",
    "Feedback",
    "FeedbackBatchResult",
    "FeedbackFields",
    "FeedbackItem",
    "FeedbackItemResult",
    "FeedbackRetracted",
    "GenerateOptions",
    "Generation",
    "GenerationDetails",
    "ItemError",
    "Job",
    "JobAccepted",
    "LoggedGeneration",
    "ModelStatus",
    "Prediction",
    "RetrainValue",
    "RetryPolicy",
    "Rollout",
    "TransportError",
    "Usage",
    "ValueReport",
    "VersionFairness",
    "VersionSummary",
    "VersionWeights",
    "WeightsDiff",
]
