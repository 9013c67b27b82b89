from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.config import Settings
from app.db.database import Database
from app.main import create_app
from tests.conftest import Keys


def test_address_limit_answers_429_with_retry_after(settings: Settings, engine: Engine) -> None:
    app = create_app(settings.model_copy(update={"rate_limit_per_address": 3}), Database(engine))
    with TestClient(app) as c:
        assert [c.get("/v1/campaigns").status_code for _ in range(3)] == [200, 200, 200]
        r = c.get("/v1/campaigns")
        assert r.status_code == 429 and r.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(r.headers["retry-after"]) <= 61
        assert c.get("/healthz").status_code == 200  # probes are never limited


def test_key_limit_counts_writes_per_key(settings: Settings, engine: Engine, keys: Keys) -> None:
    limited = settings.model_copy(update={"rate_limit_per_key": 2})
    app = create_app(limited, Database(engine))
    with TestClient(app, headers={"Authorization": f"Bearer {keys.write}"}) as c:
        codes = [c.post("/v1/campaigns", json={"slug": f"rl-{i}", "name": "R"}).status_code for i in range(3)]
        assert codes == [201, 201, 429]
        assert c.get("/v1/campaigns/rl-0").status_code == 200  # reads are not counted per key
        assert c.get("/v1/campaigns/rl-2").status_code == 404  # the refused write left nothing
    # Another app in the same process counts on its own (its state is made in its lifespan).
    other = create_app(limited, Database(engine))
    with TestClient(other, headers={"Authorization": f"Bearer {keys.write}"}) as c:
        assert c.post("/v1/campaigns", json={"slug": "rl-other", "name": "R"}).status_code == 201


def test_limits_are_off_by_default(client: TestClient) -> None:
    assert all(client.get("/v1/campaigns").status_code == 200 for _ in range(30))
