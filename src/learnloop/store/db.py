"""Engine creation and transactions.

SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed transaction survives a
killed process (not a power cut), which is what "acknowledged feedback is durable" means
for the embedded default. Writes use ``BEGIN IMMEDIATE`` so a read-then-write transaction
waits for the lock (``busy_timeout``) instead of failing; reads use deferred transactions so
a long snapshot read never blocks the feedback writer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url


class Database:
    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.read_engine = _sqlite_engine(url, begin="BEGIN")
            self.write_engine = _sqlite_engine(url, begin="BEGIN IMMEDIATE")
        else:
            if parsed.drivername == "postgresql":
                url = str(parsed.set(drivername="postgresql+psycopg"))
            self.read_engine = create_engine(url, pool_size=pool_size, max_overflow=10, pool_pre_ping=True)
            # The hot-path writer retries on failure, so it skips pre-ping's extra round trip.
            self.write_engine = create_engine(url, pool_size=pool_size, max_overflow=10, pool_pre_ping=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.read_engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.write_engine.begin() as conn:
            yield conn

    def dispose(self) -> None:
        self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            self.write_engine.dispose()


def delete_in(conn: Connection, column: Any, ids: Sequence[str]) -> int:
    """Delete the rows of ``column``'s table whose ``column`` is in ``ids`` (in chunks, so a long
    list never exceeds a backend's limit on bound parameters); returns how many went."""
    deleted = 0
    for start in range(0, len(ids), 500):
        deleted += conn.execute(column.table.delete().where(column.in_(list(ids[start : start + 500])))).rowcount
    return deleted


def _sqlite_engine(url: str, *, begin: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit one is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine
