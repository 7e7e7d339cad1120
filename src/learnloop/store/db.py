"""Engine creation and transactions.

SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed transaction survives a
killed process (not a power cut), which is what "acknowledged feedback is durable" means
for the embedded default. Writes use ``BEGIN IMMEDIATE`` so a read-then-write transaction
waits for the lock (``busy_timeout``) instead of failing; reads use deferred transactions so
a long snapshot read never blocks the feedback writer.

Every connection gives up on a statement after ``statement_timeout`` seconds (PostgreSQL's
``statement_timeout``; SQLite's busy timeout, how long it waits for a lock), so a stalled
database fails requests visibly instead of hanging them. ``cancel_running`` interrupts the
statements in flight (a graceful stop that must end within a bound).

Planner statistics follow bulk loads: ``note_written`` runs ``ANALYZE`` on a PostgreSQL table
each time the rows this process wrote to it have doubled (from 10,000), so a join planned
while the tables were small is re-planned long before autovacuum might get to it (a plan made
on stale statistics ran for minutes at 1M predictions).

A SQLite file deleted or replaced under a running process would take every later commit into
a file nobody will read again: ``write`` checks the file's identity (device and inode) before
a transaction and after its commit, and once it has changed refuses every write with
``StorageUnavailableError`` until the process restarts (``lost`` says why).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from learnloop.errors import StorageUnavailableError
from learnloop.store.tables import metadata

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5  # PostgreSQL: an unreachable host fails a connection attempt this fast
ANALYZE_MIN_ROWS = 10_000


class Database:
    def __init__(self, url: str, *, pool_size: int = 5, statement_timeout: float = 15.0) -> None:
        self.url = url
        self.statement_timeout = statement_timeout
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self._file: Path | None = None
        self._identity: tuple[int, int] | None = None
        self.lost: str | None = None  # why writes are refused for good (the SQLite file went away)
        self._running: set[Any] = set()  # DBAPI connections checked out now (cancel_running)
        self._running_lock = threading.Lock()
        self._written: dict[str, tuple[int, int]] = {}  # table -> (rows at the last ANALYZE, rows since)
        busy_ms = max(1, round(statement_timeout * 1000))
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                self._file = Path(parsed.database).resolve()
                self._file.parent.mkdir(parents=True, exist_ok=True)
            self.read_engine = self._sqlite_engine(url, begin="BEGIN", busy_ms=busy_ms)
            self.write_engine = self._sqlite_engine(url, begin="BEGIN IMMEDIATE", busy_ms=busy_ms)
        else:
            if parsed.drivername == "postgresql":
                url = str(parsed.set(drivername="postgresql+psycopg"))
            args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, "options": f"-c statement_timeout={busy_ms}"}
            self.read_engine = create_engine(
                url, pool_size=pool_size, max_overflow=10, pool_pre_ping=True, connect_args=args
            )
            # The hot-path writer retries on failure, so it skips pre-ping's extra round trip.
            self.write_engine = create_engine(
                url, pool_size=pool_size, max_overflow=10, pool_pre_ping=False, connect_args=args
            )
        for engine in (self.read_engine, self.write_engine):
            event.listen(engine, "checkout", self._checked_out)
            event.listen(engine, "checkin", self._checked_in)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.read_engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed on exit; refused once the SQLite file has gone (a
        commit that landed in a file deleted meanwhile raises after the commit: never
        acknowledge it)."""
        self.check_file()
        with self.write_engine.begin() as conn:
            yield conn
        self.check_file()

    def check_file(self) -> None:
        """Raise ``StorageUnavailableError`` if the SQLite file this process opened was
        deleted or replaced (the first call records its identity). Free on PostgreSQL."""
        if self._file is None:
            return
        if self.lost is None:
            try:
                st = os.stat(self._file)
                identity: tuple[int, int] | None = (st.st_dev, st.st_ino)
            except FileNotFoundError:
                identity = None
            if self._identity is None and identity is not None:
                self._identity = identity
            elif identity != self._identity:
                self.lost = "the database file was deleted or replaced while the server ran; restart it"
                log.critical("%s (%s)", self.lost, self._file)
        if self.lost is not None:
            raise StorageUnavailableError(self.lost, retry_after=60.0)

    def ping(self) -> None:
        """One trivial query (raises when the database cannot answer within the timeout)."""
        self.check_file()
        with self.read() as conn:
            conn.exec_driver_sql("SELECT 1")

    def note_written(self, table: str, rows: int) -> None:
        """Count rows a bulk writer put in ``table``; on PostgreSQL, ``ANALYZE`` it once they
        reach the larger of ``ANALYZE_MIN_ROWS`` and the count at the previous ``ANALYZE``.
        Failures are logged, never raised (statistics are an optimisation)."""
        if self.is_sqlite:
            return
        with self._running_lock:
            analyzed, since = self._written.get(table, (0, 0))
            since += rows
            due = since >= max(ANALYZE_MIN_ROWS, analyzed)
            self._written[table] = (analyzed + since, 0) if due else (analyzed, since)
        if not due:
            return
        if table not in metadata.tables:
            raise ValueError(f"unknown table {table!r}")
        try:
            with self.write() as conn:
                conn.exec_driver_sql(f"ANALYZE {table}")
        except Exception as exc:
            log.warning("ANALYZE %s failed: %s", table, exc)

    def cancel_running(self) -> int:
        """Interrupt every statement running now on this process's connections (SQLite
        ``interrupt``, PostgreSQL cancel request); returns how many connections were asked."""
        with self._running_lock:
            running = list(self._running)
        for dbapi_conn in running:
            try:
                if self.is_sqlite:
                    dbapi_conn.interrupt()
                else:
                    dbapi_conn.cancel_safe(timeout=2.0)
            except Exception as exc:  # a connection that closed meanwhile
                log.debug("could not cancel a statement: %s", exc)
        return len(running)

    def dispose(self) -> None:
        self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            self.write_engine.dispose()

    def _checked_out(self, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        with self._running_lock:
            self._running.add(dbapi_conn)

    def _checked_in(self, dbapi_conn: Any, _record: Any) -> None:
        with self._running_lock:
            self._running.discard(dbapi_conn)

    def _sqlite_engine(self, url: str, *, begin: str, busy_ms: int) -> Engine:
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_ms / 1000})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit one is deferred).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
            self.check_file()  # the first connection records the file's identity

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql(begin)

        return engine


def delete_in(conn: Connection, column: Any, ids: Sequence[str]) -> int:
    """Delete the rows of ``column``'s table whose ``column`` is in ``ids`` (in chunks, so a long
    list never exceeds a backend's limit on bound parameters); returns how many went."""
    deleted = 0
    for start in range(0, len(ids), 500):
        deleted += conn.execute(column.table.delete().where(column.in_(list(ids[start : start + 500])))).rowcount
    return deleted
