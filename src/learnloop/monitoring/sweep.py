"""One check over every model, as the worker runs its periodic checks."""

from __future__ import annotations

import logging
from collections.abc import Callable

from learnloop.store.db import Database
from learnloop.store.repositories import models as model_repo

log = logging.getLogger(__name__)


def each_model(db: Database, check: Callable[[str], object], what: str) -> None:
    """``check`` every model; a model whose check fails is logged and the others still checked."""
    with db.read() as conn:
        names = [m.name for m in model_repo.list_models(conn)]
    for name in names:
        try:
            check(name)
        except Exception:
            log.exception("model %s: the %s check failed", name, what, extra={"model": name})
