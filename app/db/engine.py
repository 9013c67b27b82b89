"""The engine of each backend, built in the app's lifespan (`create_engine_for`), never at
import time, and what code needs to know of its dialect.

SQLite is set up in `app.db.sqlite` (WAL, a busy timeout, `BEGIN IMMEDIATE` for writes).
PostgreSQL gets a statement timeout and plans each query for its own parameters.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.config import Settings, driver_url
from app.db.sqlite import configure_sqlite


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
        configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
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


def insert_for(dialect: str, model: Any) -> Any:
    """The INSERT of `dialect` ("postgresql" or "sqlite") for `model`: it has
    `on_conflict_do_nothing` and `on_conflict_do_update` (both spell them the same)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def is_sqlite(engine_or_session: Engine | Session) -> bool:
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "sqlite"


def execute_together(session: Session, statements: list[tuple[Any, dict[str, Any]]]) -> list[Any]:
    """Run `statements` (each with its parameters) in order, in the session's transaction, and
    give each one's first row (or None). On PostgreSQL they go in one round trip (psycopg's
    pipeline mode): a write that takes rows every other writer of a letter waits for then holds
    them for one round trip instead of one per statement — under load a round trip is also a
    wait for the interpreter lock. SQLite runs them one after another. On PostgreSQL the
    parameters reach the driver as given, without SQLAlchemy's type processing: plain values."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        results = [connection.execute(statement, params) for statement, params in statements]
        return [result.first() if result.returns_rows else None for result in results]
    raw = connection.connection.driver_connection
    assert raw is not None  # (a checked-out connection has its driver's)
    cursors = []
    sql = ""
    try:
        with raw.pipeline():
            for statement, params in statements:
                sql, bound = _compiled(statement, connection.dialect)
                cursor = raw.cursor()
                cursor.execute(sql, {**bound, **params})
                cursors.append(cursor)
        return [cursor.fetchone() if cursor.description else None for cursor in cursors]
    except psycopg.Error as error:  # as SQLAlchemy raises it (a timeout, a deadlock: app.errors)
        raise DBAPIError.instance(sql, None, error, psycopg.Error) from error


@lru_cache(maxsize=64)
def _compiled(statement: Any, dialect: Any) -> tuple[str, dict[str, Any]]:
    """The SQL text and fixed parameters of a statement built once (module constants or cached
    builds, so they are compiled once per process)."""
    compiled = statement.compile(dialect=dialect)
    return str(compiled), dict(compiled.params)
