"""SQLite's connections: WAL mode, a busy timeout, foreign keys, and write transactions that
start with `BEGIN IMMEDIATE`, so that two writers queue for the write lock instead of failing
with "database is locked" when a reader upgrades.

The writers of one `Database` also queue on a lock of their own (`WriterGate`), held from
`BEGIN IMMEDIATE` to the transaction's end. Left to SQLite, a writer that finds the database
locked polls it with growing sleeps, so one of many concurrent writers could wait seconds while
the lock stood free. A writer that has not had the gate within the busy timeout goes on to
SQLite's own wait (another process holds the database, or this thread holds a write already).
The gate belongs to the `Database` (so to the app that made it, on `app.state`), and reaches
the engine's `begin` event through the write sessions' execution options.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection

WRITE_OPTION = "undersigned_write"  # execution option of the write sessions: their `WriterGate`
_GATED = "undersigned_gated"  # connection info: the gate its write transaction holds


class WriterGate:
    """The lock the write transactions of one `Database` take turns on (SQLite only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def locked(self) -> bool:
        return self._lock.locked()

    def acquire(self, timeout: float) -> bool:
        return self._lock.acquire(timeout=timeout)

    def release(self) -> None:
        self._lock.release()


def configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    # pysqlite's own transaction handling defeats SAVEPOINT and BEGIN IMMEDIATE; take it over
    # (the recipe of SQLAlchemy's SQLite dialect documentation).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    timeout = busy_timeout_ms / 1000

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        gate = conn.get_execution_options().get(WRITE_OPTION)
        if not isinstance(gate, WriterGate):
            conn.exec_driver_sql("BEGIN")
            return
        gated = gate.acquire(timeout)
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            if gated:
                gate.release()
            raise
        if gated:
            conn.info[_GATED] = gate

    def release(info: dict[Any, Any]) -> None:
        gate = info.pop(_GATED, None)
        if gate is not None:
            gate.release()

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn: Connection) -> None:
        if not conn.invalidated:  # (an invalidated one has no `info`; `_on_invalidate` saw it)
            release(conn.info)

    # (and should a connection go back to the pool, or be dropped, in a transaction no
    # `commit` or `rollback` event saw end: never keep the gate shut)
    @event.listens_for(engine, "reset")
    def _on_reset(_dbapi: Any, record: Any, _state: Any) -> None:
        release(record.info)

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(_dbapi: Any, record: Any, _exc: Any) -> None:
        release(record.info)
