"""What the engine sets up on each backend, a query past the statement timeout answered as 503
with Retry-After rather than hanging, and the event loop's shared reads."""

from __future__ import annotations

import asyncio
import gc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.config import Settings
from app.db.database import Database, ReadSession, session_scope
from app.db.engine import create_engine_for, execute_together
from app.db.sqlite import WRITE_OPTION
from app.main import create_app
from tests.waiting import wait_for


def test_connection_settings(engine: Engine, backend: str) -> None:
    gate = Database(engine).writer_gate
    assert (gate is not None) == (backend == "sqlite")  # (SQLite's writers queue)
    with engine.connect() as conn:
        if backend == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        else:
            assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "15s"


def test_sqlite_writers_queue_on_a_gate_that_every_end_of_a_write_opens(tmp_path: Path) -> None:
    """SQLite: the write transactions of a process take turns on a lock of their own (SQLite's
    busy wait sleeps, and made some of 16 concurrent writers wait seconds); however a write
    ends, the next one can go. (A SQLite file of its own, whatever the suite's backend.)"""
    own = Settings(database_url=f"sqlite:///{tmp_path / 'gate.db'}")
    database = Database(create_engine_for(own))
    gate = database.writer_gate
    assert gate is not None and Database(database.engine).writer_gate is not gate  # one per app
    try:
        with session_scope(database.read_sessions) as session:
            session.execute(text("SELECT 1"))
            assert not gate.locked()  # reads never take it
        with session_scope(database.write_sessions) as session:
            session.execute(text("SELECT 1"))
            assert gate.locked()
        assert not gate.locked()  # committed
        with pytest.raises(LookupError), session_scope(database.write_sessions) as session:
            session.execute(text("SELECT 1"))
            raise LookupError
        assert not gate.locked()  # rolled back
        with database.write_sessions() as session:
            session.execute(text("SELECT 1"))
            session.invalidate()
        assert not gate.locked()  # its connection dropped
        with database.write_sessions() as session:
            session.execute(text("SELECT 1"))
        assert not gate.locked()  # closed without a commit
        with database.engine.execution_options(**{WRITE_OPTION: gate}).connect() as conn:
            conn.execute(text("SELECT 1"))
            conn.commit()
            assert not gate.locked()  # a connection that goes on to a second transaction
            conn.execute(text("SELECT 1"))
            assert gate.locked()
            conn.rollback()
            assert not gate.locked()

        def forgotten() -> None:
            conn = database.engine.execution_options(**{WRITE_OPTION: gate}).connect()
            conn.execute(text("SELECT 1"))
            assert gate.locked()

        forgotten()
        gc.collect()
        assert not gate.locked()  # a connection left to the garbage collector

        order: list[str] = []

        def second() -> None:
            with session_scope(database.write_sessions) as other:
                other.execute(text("SELECT 1"))
                order.append("second writes")

        with ThreadPoolExecutor(1) as pool, session_scope(database.write_sessions) as session:
            session.execute(text("SELECT 1"))
            waiting = pool.submit(second)
            assert not waiting.done()
            order.append("first ends")
        waiting.result(timeout=10)
        assert order == ["first ends", "second writes"] and not gate.locked()
    finally:
        database.dispose()


def test_statement_timeout_is_a_503_with_retry_after(settings: Settings, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("statement timeouts are PostgreSQL's")
    quick = settings.model_copy(update={"statement_timeout_ms": 50})
    database = Database(create_engine_for(quick))
    app = create_app(quick, database=database)

    @app.get("/slow")
    def slow(session: ReadSession) -> dict[str, str]:
        session.execute(text("SELECT pg_sleep(2)"))
        return {"done": "never"}

    try:
        with TestClient(app) as client:
            r = client.get("/slow")
    finally:
        database.dispose()
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.headers["content-type"].startswith("application/problem+json")


def test_the_cli_runs_bulk_work_without_the_request_timeout(
    database_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.cli import _database
    from app.config import get_settings

    if backend != "postgresql":
        pytest.skip("statement timeouts are PostgreSQL's")
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        database = _database()
        with database.engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"
        database.dispose()
    finally:
        get_settings.cache_clear()


def test_concurrent_reads_share_a_query_but_never_one_that_began_before_them(
    fresh_database_url: str, backend: str
) -> None:
    """`Database.fetch_one` on PostgreSQL: readers that come while a query runs share the next
    one (one run for eight readers), which starts after they came, so a write committed before
    they came is seen; an error reaches every reader that shared the query."""
    if backend != "postgresql":
        pytest.skip("SQLite reads on the event loop, one at a time: nothing to share")
    database = Database(create_engine_for(Settings(database_url=fresh_database_url)))
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE probe (v integer)"))
        conn.execute(text("INSERT INTO probe VALUES (1)"))
        conn.execute(text("CREATE SEQUENCE probe_runs"))
    sql = "SELECT v, nextval('probe_runs') FROM probe, pg_sleep(%s)"

    def first_query_sleeps() -> bool:
        """In pg_sleep: the statement's snapshot was taken before it got there."""
        with database.engine.connect() as conn:
            activity = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            return bool(conn.execute(text(f"{activity} AND wait_event = 'PgSleep'")).scalar())

    async def scenario() -> tuple[object, list[object], list[BaseException | object]]:
        try:
            first = asyncio.create_task(database.fetch_one(sql, (0.4,)))
            # In a thread: the loop must go on running the first query meanwhile.
            await asyncio.to_thread(wait_for, first_query_sleeps, "the first query to run", 10)
            with database.engine.begin() as conn:
                conn.execute(text("UPDATE probe SET v = 2"))
            later = await asyncio.gather(*(database.fetch_one(sql, (0.4,)) for _ in range(8)))
            failing = await asyncio.gather(
                *(database.fetch_one("SELECT 1 / %s", (0,)) for _ in range(3)), return_exceptions=True
            )
            return await first, list(later), list(failing)
        finally:
            await database.aclose()

    try:  # in a thread of its own: a browser test's driver may hold this thread's event loop
        with ThreadPoolExecutor(1) as thread:
            first, later, failing = thread.submit(lambda: asyncio.run(scenario())).result()
    finally:
        database.dispose()
    assert first == (1, 1)
    assert later == [(2, 2)] * 8  # after the write, and one run of the query for all eight
    assert len(failing) == 3 and all(isinstance(e, psycopg.errors.DivisionByZero) for e in failing)


def test_statements_run_together_in_order_and_fail_as_sqlalchemy_errors(db: Session) -> None:
    """`execute_together` (one round trip on PostgreSQL): each statement sees the ones before
    it, each gives its first row, and a failure is SQLAlchemy's error of its kind (so the
    error handlers map it), leaving the transaction to roll back."""
    bump = text("UPDATE registry_version SET version = version + 1 RETURNING version")
    before = db.execute(text("SELECT version FROM registry_version")).scalar_one()
    rows = execute_together(db, [(bump, {}), (bump, {}), (text("SELECT :n * 2"), {"n": 21})])
    assert [row[0] if row is not None else None for row in rows] == [before + 1, before + 2, 42]
    if db.get_bind().dialect.name == "postgresql":  # (SQLite divides by zero into NULL)
        with pytest.raises(DBAPIError):
            execute_together(db, [(bump, {}), (text("SELECT 1 / (:n - :n)"), {"n": 1})])
        db.rollback()
        assert db.execute(text("SELECT version FROM registry_version")).scalar_one() == before
