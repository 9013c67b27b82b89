"""Engine and sessions.

The engine is built in the app's lifespan (`create_engine_for`), never at import time. The
request owns the transaction: `get_session` yields a session and commits when the endpoint
returns, rolls back on any error; services only `flush()`.

SQLite runs in WAL mode with a busy timeout, and write transactions start with
`BEGIN IMMEDIATE`, so two writers queue for the write lock instead of failing with
"database is locked" when a reader upgrades. PostgreSQL gets a statement timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import weakref
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings, driver_url

WRITE_OPTION = "undersigned_write"
_GATED = "undersigned_gated"  # a SQLite write transaction holds the process's writer gate

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


def create_engine_for(settings: Settings, *, url: str | None = None) -> Engine:
    target = driver_url(url or settings.database_url)
    if target.get_backend_name() == "sqlite":
        pool: dict[str, Any] = {}
        if target.database and target.database != ":memory:":
            # Keep every connection the threads use at once: an overflow connection is opened
            # and closed per checkout, which costs more than the read it serves.
            pool = {
                "pool_size": settings.db_pool_size + settings.db_max_overflow,
                "max_overflow": 0,
                "pool_timeout": settings.db_pool_timeout_seconds,
            }
        engine = create_engine(
            target,
            connect_args={"check_same_thread": False, "timeout": settings.sqlite_busy_timeout_ms / 1000},
            **pool,
        )
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
        return engine
    # Letters differ in size by five orders of magnitude: a generic plan (what PostgreSQL
    # switches a prepared statement to after five runs) fits none of them, so plan each query
    # for its own parameters.
    options = "-c plan_cache_mode=force_custom_plan"
    if settings.statement_timeout_ms:
        options += f" -c statement_timeout={settings.statement_timeout_ms}"
    return create_engine(
        target,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,  # then a 503 with Retry-After (app.errors)
        pool_pre_ping=True,
        connect_args={"options": options},
    )


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
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

    # The writers of this process queue for SQLite's one write lock on a lock of our own, held
    # from BEGIN IMMEDIATE to the transaction's end. Left to SQLite, a writer that finds the
    # database locked polls it with growing sleeps, so one of many concurrent writers could wait
    # seconds while the lock stood free (16 writers to one letter: p99 1.4-1.9 s). One that has
    # not had the gate within the busy timeout goes on to SQLite's own wait (another process
    # holds the database, or this thread holds a write already).
    gate = _writer_gates[engine] = threading.Lock()
    timeout = busy_timeout_ms / 1000

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if not conn.get_execution_options().get(WRITE_OPTION, False):
            conn.exec_driver_sql("BEGIN")
            return
        gated = gate.acquire(timeout=timeout)
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            if gated:
                gate.release()
            raise
        conn.info[_GATED] = gated

    def release(info: dict[Any, Any]) -> None:
        if info.pop(_GATED, False):
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


_writer_gates: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()


def writer_gate(engine: Engine) -> threading.Lock | None:
    """The lock the write transactions of this process queue on for a SQLite engine (held
    from BEGIN IMMEDIATE to the end of the transaction); None for PostgreSQL."""
    return _writer_gates.get(engine)


def insert_for(dialect: str, model: Any) -> Any:
    """The INSERT of `dialect` ("postgresql" or "sqlite") for `model`: it has
    `on_conflict_do_nothing` and `on_conflict_do_update` (both spell them the same)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def is_sqlite(engine_or_session: Engine | Session) -> bool:
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "sqlite"


class Database:
    """The engine and the two session factories (reads, and writes that take the write lock
    at once on SQLite), plus `fetch_one`: the event loop's own path to one row, for the hot
    reads' validators."""

    # True when every session shares one connection (the tests' rolled-back transaction): no
    # background work (the webhook worker) may use it beside the requests.
    shares_one_connection = False

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.read_sessions = sessionmaker(engine, expire_on_commit=False)
        self.write_sessions = sessionmaker(
            engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )
        self._async_pool: AsyncConnectionPool[Any] | None = None
        self._shared = SharedReads(self._pg_fetch_one)
        self._sqlite = threading.local()

    async def fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """One row of a raw SQL query (`%s` placeholders), read without a thread or the ORM:
        the first step of the hottest reads (a letter's validator), which must cost about what
        reading one row costs. PostgreSQL: a small psycopg async pool in autocommit (one round
        trip, never blocking the event loop). SQLite: a connection of the calling thread's own,
        read right on the event loop — an indexed read of a WAL database takes microseconds and
        never waits for a writer, less than a hop to a worker thread. Rows come as the driver
        gives them (no type processing), the same as `fetch_one_sync`. On PostgreSQL the same
        query asked at once by many readers is sent once at a time (`SharedReads`)."""
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

    def _sqlite_fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
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
        row: tuple[Any, ...] | None = connection.execute(sql.replace("%s", "?"), tuple(params)).fetchone()
        return row

    async def aclose(self) -> None:
        """Close what `fetch_one` opened, in the event loop that opened it (the app's lifespan
        does, at shutdown). The engine stays: `dispose` is its owner's to call."""
        if self._async_pool is not None:
            await self._async_pool.close()
            self._async_pool = None
        connection = getattr(self._sqlite, "connection", None)
        if connection is not None:
            connection.close()
            self._sqlite.connection = None

    def dispose(self) -> None:
        self.engine.dispose()


def fetch_one_sync(bind: Engine | Connection, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """`Database.fetch_one` for a caller that already has a connection (or an engine) in hand:
    the same SQL through the DBAPI, the same untyped row."""
    if bind.dialect.paramstyle == "qmark":
        sql = sql.replace("%s", "?")
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return fetch_one_sync(conn, sql, params)
    row = bind.exec_driver_sql(sql, tuple(params)).first()
    return None if row is None else tuple(row)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session; commit if the block succeeds, roll back otherwise."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def _read_session(request: Request) -> Iterator[Session]:
    with session_scope(get_database(request).read_sessions) as session:
        yield session


# `scope="function"`: the commit runs when the endpoint returns, before the response is sent,
# so a failed commit is an error answer rather than a lost write behind a 2xx.
ReadSession = Annotated[Session, Depends(_read_session, scope="function")]
