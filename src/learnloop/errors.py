"""Domain errors. The HTTP edge maps them to problem+json (``api/errors.py``).

Hierarchy::

    LearnloopError                 base of everything learnloop raises on purpose
    ├── DataError                  an input file or dataset is unusable
    ├── ValidationError            a request or value breaks a rule (field named)
    ├── NotFoundError              a model, version, prediction, feedback or job does not exist
    ├── ConflictError              the state forbids it (already exists, job already running)
    │   └── LeaseLostError         a worker's job was reclaimed by another worker (its lease expired)
    ├── InsufficientDataError      too little data to train or judge honestly
    ├── ArtifactError              an artifact is missing, corrupt or of another format
    ├── PromotionRejectedError     the gate refused a candidate
    ├── OverloadedError            a bounded queue is full; retry after a delay
    └── StorageUnavailableError    the database cannot be reached; retry after a delay
"""

from __future__ import annotations


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


class NotFoundError(LearnloopError):
    code = "not_found"


class ConflictError(LearnloopError):
    code = "conflict"


class LeaseLostError(ConflictError):
    code = "lease_lost"


class InsufficientDataError(LearnloopError):
    code = "insufficient_data"


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
