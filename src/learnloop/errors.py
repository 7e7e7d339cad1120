"""Domain errors. The HTTP edge maps them to problem+json (``api/errors.py``).

Hierarchy::

    LearnloopError                 base of everything learnloop raises on purpose
    ├── DataError                  an input file or dataset is unusable
    ├── ValidationError            a request or value breaks a rule (field named)
    │   └── MissingExtraError      an optional dependency (a pip extra) is not installed
    ├── NotFoundError              a model, version, prediction, feedback or job does not exist
    ├── ConflictError              the state forbids it (already exists, job already running)
    │   ├── GateRejectedError      a gate-rejected version put on traffic without forcing it
    │   ├── LeaseLostError         a worker's job was reclaimed by another worker (its lease expired)
    │   │   └── JobCancelledError  ... or cancelled by a person while it ran
    │   ├── IdempotencyConflictError   a client feedback_id reused for a different event
    │   ├── DuplicateInBatchError      a client feedback_id repeated inside one batch
    │   ├── NotSupportedError      what is asked is not (yet) something this model can do
    │   └── ArtifactRemovedError   a version's artifact was removed by the retention policy
    ├── InsufficientDataError      too little data to train or judge honestly
    ├── ArtifactError              an artifact is missing, corrupt or of another format
    ├── PromotionRejectedError     the gate refused a candidate
    ├── OverloadedError            a bounded queue is full; retry after a delay
    └── StorageUnavailableError    the database cannot be reached; retry after a delay
"""

from __future__ import annotations

import re

_FILE_URL = re.compile(r"file://\S+")
_ABSOLUTE_PATH = re.compile(r"(?<![\w./-])/[^\s'\",;)]+")


class LearnloopError(Exception):
    """Base class; ``code`` is stable and appears in API error bodies."""

    code = "learnloop_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class DataError(LearnloopError):
    code = "data_error"


class ValidationError(LearnloopError):
    code = "validation_error"


class WrongTaskError(ValidationError):
    """A request a model of another task answers: a prediction asked of a generative model,
    a generation asked of a classifier."""

    code = "wrong_task"


class MissingExtraError(ValidationError):
    """What was asked needs an optional dependency that is not installed; the message names the
    command that installs it (``pip install 'learnloop[llm]'``)."""

    code = "missing_extra"

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class NotFoundError(LearnloopError):
    code = "not_found"


class ConflictError(LearnloopError):
    code = "conflict"


class GateRejectedError(ConflictError):
    """A person asked to put on traffic a version the offline gate rejected, without forcing it."""

    code = "gate_rejected"


class LeaseLostError(ConflictError):
    code = "lease_lost"


class JobCancelledError(LeaseLostError):
    """The running job was cancelled (``JobService.cancel``): its worker stops and writes nothing."""

    code = "job_cancelled"


class IdempotencyConflictError(ConflictError):
    """A client idempotency key (``feedback_id``) already names a different event."""

    code = "idempotency_conflict"

    def __init__(self, key: str, existing_id: str) -> None:
        super().__init__(
            f"feedback_id {key!r} already names another event ({existing_id}) with a different payload; "
            "a retry must repeat the event exactly, a new event needs a new feedback_id",
            field="feedback_id",
        )
        self.key = key
        self.existing_id = existing_id


class DuplicateInBatchError(ConflictError):
    """An item of a batch carries a ``feedback_id`` an earlier item of the batch carries."""

    code = "duplicate_in_batch"

    def __init__(self, key: str, first: int, *, same: bool) -> None:
        outcome = "the same event, stored once" if same else "a different event: use a new feedback_id"
        super().__init__(f"feedback_id {key!r} repeats item {first} of this batch ({outcome})", field="feedback_id")
        self.key = key
        self.first = first
        self.same = same


class NotSupportedError(ConflictError):
    """The model exists and the request is well formed, but this is not something the model
    can do: train or serve a model whose answers are made elsewhere."""

    code = "not_supported"


class ArtifactRemovedError(ConflictError):
    """A version whose artifact the retention policy removed (``learnloop gc``): it cannot
    serve, be rolled back to or be loaded again; its record and metrics stay."""

    code = "artifact_removed"


class InsufficientDataError(LearnloopError):
    code = "insufficient_data"


class ModelUnavailableError(LearnloopError):
    """The model exists but has no version that can serve (its champion refuses to load)."""

    code = "model_unavailable"


class ArtifactError(LearnloopError):
    code = "artifact_error"


class PromotionRejectedError(LearnloopError):
    code = "promotion_rejected"


class OverloadedError(LearnloopError):
    code = "overloaded"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageUnavailableError(OverloadedError):
    code = "storage_unavailable"


def without_paths(message: str) -> str:
    """``message`` with absolute file paths and file URLs replaced by ``<path>``: for answers
    to unauthenticated clients (the full message belongs in the server log)."""
    return _ABSOLUTE_PATH.sub("<path>", _FILE_URL.sub("<path>", message))
