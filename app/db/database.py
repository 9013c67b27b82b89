"""The `Database` an app reads and writes through (made in its lifespan, kept on `app.state`),
and the request's transaction.

The request owns the transaction: `ReadSession` yields a session and commits when the endpoint
returns, rolls back on any error; services only `flush()`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.db.rows import EventLoopRows
from app.db.sqlite import WRITE_OPTION, WriterGate


class Database:
    """The engine and the two session factories (reads, and writes that take the write lock
    at once on SQLite, queueing on this database's `writer_gate`), plus `fetch_one`: the event
    loop's own path to one row, for the hot reads' validators."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.writer_gate = WriterGate() if engine.dialect.name == "sqlite" else None
        self.read_sessions = sessionmaker(engine, expire_on_commit=False)
        writes = engine.execution_options(**{WRITE_OPTION: self.writer_gate}) if self.writer_gate else engine
        self.write_sessions = sessionmaker(writes, expire_on_commit=False)
        self._rows = EventLoopRows(engine)

    async def fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """One row of a raw SQL query (`%s` placeholders) read on the event loop, as the driver
        gives it (`app.db.rows`)."""
        return await self._rows.fetch_one(sql, params)

    async def aclose(self) -> None:
        """Close what `fetch_one` opened, in the event loop that opened it (the app's lifespan
        does, at shutdown). The engine stays: `dispose` is its owner's to call."""
        await self._rows.aclose()

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
