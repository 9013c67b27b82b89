"""What the engine sets up on each backend, and a query past the statement timeout answered
as 503 with Retry-After rather than hanging."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from app.config import Settings
from app.db import Database, ReadSession, create_engine_for
from app.main import create_app


def test_connection_settings(engine: Engine, backend: str) -> None:
    with engine.connect() as conn:
        if backend == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        else:
            assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "15s"


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
