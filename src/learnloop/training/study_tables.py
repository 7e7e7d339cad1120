"""Optuna's tables in learnloop's database, made once per process before any study is opened."""

from __future__ import annotations

from learnloop.selection.search import opened_storage
from learnloop.store.db import Database
from learnloop.store.studies import study_tables_lock

_READY: set[str] = set()  # database URLs whose Optuna tables this process has seen made


def ensure_study_tables(db: Database) -> None:
    """Make Optuna's tables in ``db`` once per process, under a lock: workers starting together
    on PostgreSQL would race to make them (the training process then finds them made)."""
    if db.url in _READY:
        return
    with study_tables_lock(db), opened_storage(db.url):
        pass
    _READY.add(db.url)
