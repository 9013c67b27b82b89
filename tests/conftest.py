"""Test fixtures. Every test that takes `db` (or anything built on it) runs once on SQLite and,
when TEST_DATABASE_URL is set, once more on PostgreSQL. Each backend gets a fresh database per
test session, built by the Alembic migrations (never `create_all`). The app reads and writes it
through the production `Database` and commits for real; a test that used the session database
leaves it as the migrations made it, every table emptied afterwards (`empty_database`)."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app import migrate
from app.auth import hash_key, new_key
from app.config import Settings, driver_url
from app.db.database import Database
from app.db.engine import create_engine_for
from app.main import create_app
from app.models import ApiKey, Base, RegistryVersion

pytest_plugins = ["tests.browser"]

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
# Starlette's TestClient sends `Host: testserver`: the tests' apps answer to it as well as to the
# default localhost names (a real server in a test is reached at 127.0.0.1).
os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
BACKENDS = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])


def _pg_admin_engine() -> Engine:
    assert TEST_DATABASE_URL
    return create_engine(driver_url(TEST_DATABASE_URL), isolation_level="AUTOCOMMIT")


def make_database_url(kind: str, tmp: Path, *, copy_of: str | None = None) -> Iterator[str]:
    """A new database of `kind`, empty or a copy of the database at `copy_of`; dropped afterwards."""
    if kind == "sqlite":
        path = tmp / f"test-{uuid.uuid4().hex[:8]}.db"
        if copy_of is not None:
            # SQLite's backup: the whole database, its write-ahead log included.
            source, target = sqlite3.connect(make_url(copy_of).database or ""), sqlite3.connect(path)
            try:
                source.backup(target)
            finally:
                source.close()
                target.close()
        yield f"sqlite:///{path}"
        return
    admin = _pg_admin_engine()
    name = f"undersigned_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    template = f' TEMPLATE "{make_url(copy_of).database}"' if copy_of else ""
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{template}'))
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
def migrated_template(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database the migrations made and nothing ever opens afterwards: what the migrated
    databases below are copies of, so that the migrations run once per backend and worker."""
    for url in make_database_url(backend, tmp_path_factory.mktemp("template")):
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def database_url(
    backend: str, migrated_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database for the whole session (one per backend)."""
    yield from make_database_url(backend, tmp_path_factory.mktemp("db"), copy_of=migrated_template)


@pytest.fixture
def fresh_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty (unmigrated) database for tests that need their own: CLI, migrations."""
    yield from make_database_url(backend, tmp_path)


@pytest.fixture
def migrated_database_url(backend: str, migrated_template: str, tmp_path: Path) -> Iterator[str]:
    """A new database of its own as the migrations make it, for a test that needs one: real
    servers, other processes, writes that must not meet the session database's."""
    yield from make_database_url(backend, tmp_path, copy_of=migrated_template)


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, webhook_worker=False)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_engine_for(settings)
    yield engine
    engine.dispose()


# The tables the migrations make beside the models' (SQLite's full-text indexes, kept by triggers).
SQLITE_FTS_TABLES = ("letters_fts", "actors_fts")


def empty_database(engine: Engine, *, keep: Collection[str] = ()) -> None:
    """Back to the migrated state: every row deleted (but those of the tables in `keep`),
    children first (a DELETE of the few rows a test wrote is far cheaper than a TRUNCATE), and
    the one row the migrations seed, the registry's version, kept at its first value. Sequences
    are left as they are: no test relies on the value of an id."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # (the app's statement timeout is for requests: emptying what a large test wrote
            # on a loaded machine may take longer, and must not leave it for the next test)
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != RegistryVersion.__tablename__ and table.name not in keep:
                conn.execute(table.delete())
        conn.execute(update(RegistryVersion).where(RegistryVersion.id == 1).values(version=1))
        if engine.dialect.name == "sqlite":
            for name in SQLITE_FTS_TABLES:
                conn.exec_driver_sql(f"DELETE FROM {name}")


def end_example(db: Session) -> None:
    """Between the examples of a property test: what the example wrote (committed, so the app
    saw it) deleted, the test's API keys kept, `db` emptied of what it held."""
    db.rollback()
    db.expunge_all()
    empty_database(db.get_bind().engine, keep={ApiKey.__tablename__})


@pytest.fixture(autouse=True)
def _empty_after(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty the session database after every test that could reach it (one that takes
    `database_url` or anything built on it: `settings`, `engine`, `db`, `app`, the clients).
    Autouse, so set up first and torn down last: after the test's clients and sessions end."""
    if "database_url" not in request.fixturenames:
        yield
        return
    engine: Engine = request.getfixturevalue("engine")
    yield
    empty_database(engine)


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session for arranging and checking data directly. What it writes is the test's to
    commit; the clients below commit it before every request they send, so the app sees what
    the test arranged and the session's next read sees what the app wrote."""
    session = Session(engine, expire_on_commit=False)
    yield session
    session.close()


@pytest.fixture(scope="session")
def _session_app(settings: Settings, engine: Engine):  # type: ignore[no-untyped-def]
    """One app per backend and worker. FastAPI prepares a route (its parameters' and body's
    models) the first time an app matches a request against it, and that is most of what a
    short test costs; so the tests share the app, and what the app keeps between requests is
    still each test's own: its lifespan (run by every test's `served`) makes the renderings,
    the key counter and the live hub anew, and closes the `Database`'s event-loop reads."""
    return create_app(settings, database=Database(engine))


@pytest.fixture
def app(_session_app):  # type: ignore[no-untyped-def]
    """The app on the production `Database`, as its lifespan would make it, over the session's
    engine. Shared: a test that adds routes to an app takes `own_app`."""
    return _session_app


@pytest.fixture
def own_app(settings: Settings, engine: Engine):  # type: ignore[no-untyped-def]
    """An app of the test's own, for a test that adds routes to it."""
    return create_app(settings, database=Database(engine))


def committing(client: TestClient, db: Session) -> TestClient:
    """`client`, committing `db` before each request it sends (`db` above)."""
    client.event_hooks["request"].append(lambda _request: db.commit())
    return client


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
def served(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The app's lifespan, run once for all of the test's clients below: they share its event
    loop (the `Database`'s event-loop reads belong to one loop, as in production)."""
    with TestClient(app) as base:
        yield base


def _client(served: TestClient, db: Session, headers: dict[str, str]) -> TestClient:
    client = TestClient(served.app, headers=headers)
    client.portal = served.portal  # the lifespan's loop, not one of its own per request
    return committing(client, db)


@pytest.fixture
def anon(served: TestClient, db: Session) -> TestClient:
    """A client without a key."""
    return _client(served, db, {})


@pytest.fixture
def client(served: TestClient, db: Session, keys: Keys) -> TestClient:
    """A client that sends a write key."""
    return _client(served, db, {"Authorization": f"Bearer {keys.write}"})


@pytest.fixture
def admin(served: TestClient, db: Session, keys: Keys) -> TestClient:
    return _client(served, db, {"Authorization": f"Bearer {keys.admin}"})
