"""Test fixtures. Every test that takes `db` (or anything built on it) runs once on SQLite and,
when TEST_DATABASE_URL is set, once more on PostgreSQL. Each backend gets a fresh database per
test session, built by the Alembic migrations (never `create_all`); each test runs inside an
outer transaction that is rolled back at its end, the app's sessions joining it through
savepoints."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app import migrate
from app.auth import hash_key, new_key
from app.config import Settings, driver_url
from app.db.database import Database
from app.db.engine import create_engine_for
from app.db.rows import fetch_one_sync
from app.main import create_app
from app.models import ApiKey

pytest_plugins = ["tests.browser"]

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
# Starlette's TestClient sends `Host: testserver`: the tests' apps answer to it as well as to the
# default localhost names (a real server in a test is reached at 127.0.0.1).
os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
BACKENDS = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])


def _pg_admin_engine() -> Engine:
    assert TEST_DATABASE_URL
    return create_engine(driver_url(TEST_DATABASE_URL), isolation_level="AUTOCOMMIT")


def make_database_url(kind: str, tmp: Path) -> Iterator[str]:
    """A new, empty database of `kind`; dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'test-{uuid.uuid4().hex[:8]}.db'}"
        return
    admin = _pg_admin_engine()
    name = f"undersigned_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(f"TEST_DATABASE_URL is set but PostgreSQL cannot be used: {exc}", pytrace=False)
    url = make_url(driver_url(TEST_DATABASE_URL or "")).set(database=name)
    try:
        yield url.set(drivername="postgresql").render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for the whole session (one per backend)."""
    for url in make_database_url(backend, tmp_path_factory.mktemp("db")):
        migrate.upgrade(url)
        yield url


@pytest.fixture
def fresh_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty (unmigrated) database for tests that need their own: CLI, migrations, servers."""
    yield from make_database_url(backend, tmp_path)


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, webhook_worker=False)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_engine_for(settings)
    yield engine
    engine.dispose()


class TestDatabase(Database):
    __test__ = False  # a fixture helper, not a test class

    """Sessions that join the test's outer transaction through savepoints."""

    shares_one_connection = True

    def __init__(self, engine: Engine, connection: Connection) -> None:
        self.engine = engine
        self.connection = connection
        self.read_sessions = sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        self.write_sessions = self.read_sessions

    async def fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """Through the test's connection, which sees the test's uncommitted rows."""
        return fetch_one_sync(self.connection, sql, params)

    async def aclose(self) -> None:
        pass

    def dispose(self) -> None:  # the engine belongs to the test session
        pass


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        outer = conn.begin()
        try:
            yield conn
        finally:
            outer.rollback()


@pytest.fixture
def db(connection: Connection) -> Iterator[Session]:
    """A session for arranging and checking data directly, inside the test's transaction."""
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield session
    session.close()


@pytest.fixture
def app(settings: Settings, engine: Engine, connection: Connection):  # type: ignore[no-untyped-def]
    return create_app(settings, database=TestDatabase(engine, connection))


@dataclass
class Keys:
    write: str
    admin: str


@pytest.fixture
def keys(db: Session) -> Keys:
    made = {}
    for scope in ("write", "admin"):
        key, prefix = new_key()
        db.add(ApiKey(name=f"test-{scope}-{prefix}", prefix=prefix, key_hash=hash_key(key), scope=scope))
        made[scope] = key
    db.commit()
    return Keys(**made)


@pytest.fixture
def anon(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """A client without a key."""
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client


@pytest.fixture
def client(app, keys: Keys) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """A client that sends a write key."""
    with TestClient(app, headers={"Authorization": f"Bearer {keys.write}"}) as client:
        yield client


@pytest.fixture
def admin(app, keys: Keys) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, headers={"Authorization": f"Bearer {keys.admin}"}) as client:
        yield client
