"""Engine and sessions.

The engine is built in the app's lifespan (`create_engine_for`), never at import time. The
request owns the transaction: `get_session` yields a session and commits when the endpoint
returns, rolls back on any error; services only `flush()`.

SQLite runs in WAL mode with a busy timeout, and write transactions start with
`BEGIN IMMEDIATE`, so two writers queue for the write lock instead of failing with
"database is locked" when a reader upgrades. PostgreSQL gets a statement timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings, driver_url

WRITE_OPTION = "undersigned_write"


def create_engine_for(settings: Settings, *, url: str | None = None) -> Engine:
    target = driver_url(url or settings.database_url)
    if target.get_backend_name() == "sqlite":
        engine = create_engine(
            target,
            connect_args={"check_same_thread": False, "timeout": settings.sqlite_busy_timeout_ms / 1000},
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

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_sqlite(engine_or_session: Engine | Session) -> bool:
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "sqlite"


class Database:
    """The engine and the two session factories (reads, and writes that take the write lock
    at once on SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.read_sessions = sessionmaker(engine, expire_on_commit=False)
        self.write_sessions = sessionmaker(
            engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    def dispose(self) -> None:
        self.engine.dispose()


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
