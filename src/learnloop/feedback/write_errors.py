"""What a failed hot-path write means: the database is out of reach (keep the data, retry,
answer 503), or it refuses this data (set it aside, answer for that request alone)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from learnloop.errors import LearnloopError, StorageUnavailableError, ValidationError
from learnloop.store.db import Database


def is_outage(exc: Exception, db: Database) -> bool:
    """True when ``exc`` says the database is unreachable, stalled (a statement or lock
    timeout, a cancelled statement) or gone (the SQLite file deleted), rather than refusing
    the rows written. Driver errors count as SQLAlchemy's do (``COPY`` runs on the driver)."""
    if isinstance(exc, StorageUnavailableError | OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    driver = db.write_engine.dialect.dbapi
    if driver is not None and isinstance(exc, driver.OperationalError | driver.InterfaceError):
        return True
    try:
        db.ping()
    except Exception:
        return True
    return False


def storage_error(exc: Exception, db: Database | None = None) -> LearnloopError:
    """The error a request hears when its write failed: 503 for an outage, else 422."""
    if isinstance(exc, LearnloopError):
        return exc
    driver = db.write_engine.dialect.dbapi if db is not None else None
    if driver is not None and isinstance(exc, driver.OperationalError | driver.InterfaceError):
        return StorageUnavailableError("the database is unavailable; retry shortly", retry_after=2.0)
    if isinstance(exc, OperationalError | InterfaceError) or not isinstance(exc, DBAPIError):
        return StorageUnavailableError("the database is unavailable; retry shortly", retry_after=2.0)
    return ValidationError(f"the database refused this write: {str(exc.orig)[:200]}", field="body")
