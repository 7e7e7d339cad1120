"""Models' specs (task, labels, policy) for the request path, without loading any model.

Intake validates feedback against its model's spec: a stream consumer or a feedback-only
replica must not load predictors to check a label. Specs are read from the database and kept
for ``ttl`` seconds, so a change made by another process (a policy update) reaches this one
within that time; a change made here is seen at once (``forget``). While the database is out
of reach the spec read last is kept (a model never seen answers 503).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from learnloop.domain import Model
from learnloop.errors import LearnloopError, StorageUnavailableError
from learnloop.store.db import Database
from learnloop.store.repositories import models as model_repo

log = logging.getLogger(__name__)


class ModelSpecs:
    def __init__(self, db: Database, *, ttl: float = 1.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._ttl = ttl
        self._monotonic = monotonic
        self._specs: dict[str, tuple[float, Model]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Model:
        """The model's spec; ``NotFoundError`` for an unknown model."""
        now = self._monotonic()
        found = self._specs.get(name)
        if found is not None and now - found[0] < self._ttl:
            return found[1]
        try:
            with self._db.read() as conn:
                model = model_repo.get_model(conn, name)
        except LearnloopError:
            raise
        except Exception as exc:  # the database is out of reach: the spec read last still holds
            if found is not None:
                log.warning("model %s: spec not refreshed (%s); using the one read before", name, exc)
                return found[1]
            raise StorageUnavailableError("the database is unavailable; retry shortly", retry_after=2.0) from exc
        with self._lock:
            self._specs[name] = (now, model)
        return model

    def forget(self, name: str) -> None:
        with self._lock:
            self._specs.pop(name, None)
