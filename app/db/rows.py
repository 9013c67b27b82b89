"""One row of raw SQL read on the event loop, without a thread or the ORM: the first step of
the hottest reads (a letter's validator), which must cost about what reading one row costs.

PostgreSQL: a small psycopg async pool in autocommit (one round trip, never blocking the event
loop), the same query asked at once by many readers sent once at a time (`SharedReads`).
SQLite: a connection of the calling thread's own, read right on the event loop — an indexed
read of a WAL database takes microseconds and never waits for a writer, less than a hop to a
worker thread. Rows come as the driver gives them (no type processing), the same as
`fetch_one_sync` gives them to a caller that has a connection in hand.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

_Key = tuple[str, tuple[Any, ...]]
_Row = tuple[Any, ...] | None


class SharedReads:
    """Concurrent reads of the same query share its round trips, without reading the past.

    A read starts the query when none of the same key is running; a read that comes while one
    runs waits for the next one, which starts when the running one ends and answers every read
    that came meanwhile. So each read gets a snapshot taken after it arrived (a write committed
    before a read came is always seen, as with a query of its own), and a hot letter read by a
    thousand clients a second costs one query at a time instead of one per client."""

    def __init__(self, run: Callable[[str, tuple[Any, ...]], Coroutine[Any, Any, _Row]]) -> None:
        self._run = run
        self._running: dict[_Key, asyncio.Task[_Row]] = {}
        self._next: dict[_Key, asyncio.Future[_Row]] = {}

    async def fetch(self, sql: str, params: tuple[Any, ...]) -> _Row:
        key = (sql, params)
        if key not in self._running:
            return await asyncio.shield(self._start(key))
        waiting = self._next.get(key)
        if waiting is None:
            waiting = self._next[key] = asyncio.get_running_loop().create_future()
        return await asyncio.shield(waiting)

    def _start(self, key: _Key) -> asyncio.Task[_Row]:
        task = asyncio.get_running_loop().create_task(self._run(*key))
        self._running[key] = task
        task.add_done_callback(lambda _task: self._ended(key))
        return task

    def _ended(self, key: _Key) -> None:
        del self._running[key]
        waiting = self._next.pop(key, None)
        if waiting is not None:
            self._start(key).add_done_callback(lambda task: _settle(waiting, task))


def _settle(future: asyncio.Future[_Row], task: asyncio.Task[_Row]) -> None:
    if future.done():
        return
    if task.cancelled():
        future.cancel()
    elif (error := task.exception()) is not None:
        future.set_exception(error)
    else:
        future.set_result(task.result())


class EventLoopRows:
    """The event loop's own connections to `engine`'s database (see the module's docstring):
    opened on first use, closed by `aclose` in the event loop that opened them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._async_pool: AsyncConnectionPool[Any] | None = None
        self._shared = SharedReads(self._pg_fetch_one)
        self._sqlite = threading.local()

    async def fetch_one(self, sql: str, params: Sequence[Any]) -> _Row:
        if self.engine.dialect.name == "sqlite":
            return self._sqlite_fetch_one(sql, params)
        return await self._shared.fetch(sql, tuple(params))

    async def _pg_fetch_one(self, sql: str, params: tuple[Any, ...]) -> _Row:
        pool = self._async_pool
        if pool is None:
            url = self.engine.url.set(drivername="postgresql")
            pool = self._async_pool = AsyncConnectionPool(
                url.render_as_string(hide_password=False),
                min_size=1,
                max_size=4,  # each holds a connection for one index lookup
                kwargs={"autocommit": True},
                open=False,
            )
        await pool.open()
        async with pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            row: TupleRow | None = await cursor.fetchone()
            return row

    def _sqlite_fetch_one(self, sql: str, params: Sequence[Any]) -> _Row:
        connection: sqlite3.Connection | None = getattr(self._sqlite, "connection", None)
        if connection is None:
            path = self.engine.url.database
            if not path or path == ":memory:":  # nothing to share a file with: use the pool
                return fetch_one_sync(self.engine, sql, params)
            with self.engine.connect() as pooled:  # the engine's busy timeout, for this one too
                busy_timeout = int(pooled.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0)
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
            connection.execute(f"PRAGMA busy_timeout={busy_timeout}")
            connection.execute("PRAGMA query_only=1")
            self._sqlite.connection = connection
        row: _Row = connection.execute(sql.replace("%s", "?"), tuple(params)).fetchone()
        return row

    async def aclose(self) -> None:
        if self._async_pool is not None:
            await self._async_pool.close()
            self._async_pool = None
        connection = getattr(self._sqlite, "connection", None)
        if connection is not None:
            connection.close()
            self._sqlite.connection = None


def fetch_one_sync(bind: Engine | Connection, sql: str, params: Sequence[Any]) -> _Row:
    """`Database.fetch_one` for a caller that already has a connection (or an engine) in hand:
    the same SQL through the DBAPI, the same untyped row."""
    if bind.dialect.paramstyle == "qmark":
        sql = sql.replace("%s", "?")
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return fetch_one_sync(conn, sql, params)
    row = bind.exec_driver_sql(sql, tuple(params)).first()
    return None if row is None else tuple(row)
