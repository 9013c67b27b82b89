"""Operations endpoints: liveness and readiness (database reachable, schema at head)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app import migrate
from app.config import Settings
from app.main import create_app


def test_healthz(anon: TestClient) -> None:
    r = anon.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_readyz_at_head(anon: TestClient) -> None:
    r = anon.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["schema"] == body["head"] == migrate.head_revision()


def test_readyz_is_503_on_a_database_that_was_not_migrated(fresh_database_url: str) -> None:
    app = create_app(Settings(database_url=fresh_database_url))
    with TestClient(app) as http:
        assert http.get("/healthz").status_code == 200  # the process is up ...
        r = http.get("/readyz")  # ... but not ready
        assert r.status_code == 503
        assert r.json()["schema"] is None and r.json()["head"] == migrate.head_revision()

        migrate.upgrade(fresh_database_url)
        r = http.get("/readyz")
        assert r.status_code == 200 and r.json()["status"] == "ok"


def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    # A SQLite path inside a folder that does not exist cannot be opened.
    app = create_app(Settings(database_url="sqlite:////nonexistent-folder-for-test/x/y.db"))
    with TestClient(app) as http:
        r = http.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
