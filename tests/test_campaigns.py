from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ChangeRecord


def test_create_read_update_campaign(client: TestClient, db: Session) -> None:
    r = client.post("/v1/campaigns", json={"slug": "xinjiang-2020", "name": "Xinjiang 2020"})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/v1/campaigns/xinjiang-2020"
    body = r.json()
    assert body["slug"] == "xinjiang-2020" and body["letters"] == [] and body["id"] > 0

    r = client.patch("/v1/campaigns/xinjiang-2020", json={"description": "Letters on the Uighurs"})
    assert r.status_code == 200 and r.json()["description"] == "Letters on the Uighurs"
    assert client.get("/v1/campaigns/xinjiang-2020").json()["name"] == "Xinjiang 2020"

    changes = db.scalars(select(ChangeRecord).where(ChangeRecord.entity == "campaign")).all()
    assert [c.action for c in changes] == ["create", "update"]
    before, after = changes[1].before or {}, changes[1].after or {}
    assert before["description"] is None and after["description"] == "Letters on the Uighurs"
    assert changes[0].key_name.startswith("test-write-")


def test_duplicate_campaign_is_409_problem(client: TestClient) -> None:
    assert client.post("/v1/campaigns", json={"slug": "c1", "name": "One"}).status_code == 201
    r = client.post("/v1/campaigns", json={"slug": "c1", "name": "Again"})
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 409 and "c1" in r.json()["detail"]


def test_unknown_campaign_is_404(anon: TestClient) -> None:
    r = anon.get("/v1/campaigns/nope")
    assert r.status_code == 404 and r.json()["title"] == "Not found"


def test_campaign_pages(client: TestClient) -> None:
    for i in range(5):
        client.post("/v1/campaigns", json={"slug": f"page-{i}", "name": f"P{i}"})
    seen: list[str] = []
    url = "/v1/campaigns?limit=2"
    while url:
        r = client.get(url)
        page = r.json()
        seen += [c["slug"] for c in page["items"]]
        url = f"/v1/campaigns?limit=2&cursor={page['next_cursor']}" if page["next_cursor"] else ""
        if page["next_cursor"]:
            assert 'rel="next"' in r.headers["link"]
    assert seen == [f"page-{i}" for i in range(5)]


def test_delete_needs_admin(client: TestClient, admin: TestClient) -> None:
    client.post("/v1/campaigns", json={"slug": "gone", "name": "Gone"})
    assert client.delete("/v1/campaigns/gone").status_code == 403
    assert admin.delete("/v1/campaigns/gone").status_code == 204
    assert admin.get("/v1/campaigns/gone").status_code == 404


def test_timestamps_read_back_with_their_zone(client: TestClient) -> None:
    created = client.post("/v1/campaigns", json={"slug": "zoned", "name": "Z"}).json()["created_at"]
    read = client.get("/v1/campaigns/zoned").json()["created_at"]
    assert created == read and read.endswith("Z")
