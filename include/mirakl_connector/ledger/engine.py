"""Create the SQLAlchemy engine of the ledger, tuned for its two backends.

SQLite is the default (a file in the Airflow home) and several Airflow task processes may write to
it at once, so every connection gets WAL (readers do not block the writer), a busy timeout (a
writer waits for the lock instead of failing at once) and explicit transactions: write
transactions start with ``BEGIN IMMEDIATE`` so that the read-then-write of a save can never be
upgraded into a deadlock, read transactions with a plain ``BEGIN``. PostgreSQL (production) uses
psycopg2's batch mode for the many-row UPDATEs of a save.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url

log = logging.getLogger(__name__)

#: Execution option marking a connection whose transactions will write.
WRITE_OPTION = "mirakl_ledger_write"

#: How long a SQLite writer waits for another process's lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_ledger_engine(
    url: str | URL, *, echo: bool = False, sqlite_mmap_bytes: int = 0
) -> Engine:
    """Return an engine for ``url``; use :func:`writer` on it for write transactions.

    :param sqlite_mmap_bytes: SQLite only: read up to that many bytes of the file through a
        memory map (``PRAGMA mmap_size``) instead of a copy into each connection's small page
        cache, for readers of many rows (the payments console). 0: SQLite's default (none).
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "postgresql":
        kwargs["pool_pre_ping"] = True
        if parsed.get_driver_name() == "psycopg2":
            kwargs["executemany_mode"] = "values_plus_batch"
    engine = create_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        in_memory = parsed.database in (None, "", ":memory:")
        _configure_sqlite(engine, in_memory=in_memory, mmap_bytes=sqlite_mmap_bytes)
    return engine


def writer(engine: Engine) -> Engine:
    """Return ``engine`` flagged so that its transactions take the write lock up front."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _configure_sqlite(engine: Engine, *, in_memory: bool, mmap_bytes: int = 0) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module: we emit BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if not in_memory:
                _enable_wal(cursor)
                if mmap_bytes:
                    cursor.execute(f"PRAGMA mmap_size={int(mmap_bytes)}")
            # synchronous stays FULL (the default): a committed attempt must survive a crash,
            # since it is written before the Stripe call it protects.
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


def _enable_wal(cursor: Any, *, tries: int = 50, pause: float = 0.02) -> None:
    """Switch the database file to WAL (a persistent setting: a no-op once done).

    The switch needs a moment of exclusive access and SQLite reports "database is locked" at
    once, without waiting, when another process holds a lock then (typically several tasks
    opening a brand-new ledger together), so it is retried briefly. If it still cannot be done
    the connection works in the default journal mode and a later connection will switch.
    """
    for attempt in range(tries):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == tries - 1:
                log.warning("SQLite ledger left in its current journal mode: %s", exc)
                return
            time.sleep(pause)
