"""Bodies and parties: reference data addressed by slug."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ChangeRecord
from tests import builders as b


@pytest.mark.parametrize(("path", "entity"), [("/v1/bodies", "body"), ("/v1/parties", "party")])
def test_create_read_update_reference(client: TestClient, db: Session, path: str, entity: str) -> None:
    r = client.post(path, json={"slug": "house-of-commons", "name": "House of Commons", "country": "GB"})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{path}/house-of-commons"
    made = r.json()
    assert (made["slug"], made["name"], made["country"]) == ("house-of-commons", "House of Commons", "GB")
    assert made["id"] > 0
    assert client.get(f"{path}/house-of-commons").json()["name"] == "House of Commons"

    r = client.patch(f"{path}/house-of-commons", json={"name": "The House of Commons"})
    assert r.status_code == 200 and r.json()["name"] == "The House of Commons" and r.json()["country"] == "GB"
    r = client.patch(f"{path}/house-of-commons", json={"country": None})
    assert r.status_code == 200 and r.json()["country"] is None
    r = client.patch(f"{path}/house-of-commons", json={"name": None})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.name"
    r = client.patch(f"{path}/house-of-commons", json={"slug": "renamed"})
    assert r.status_code == 422

    changes = db.scalars(
        select(ChangeRecord).where(ChangeRecord.entity == entity).order_by(ChangeRecord.id)
    ).all()
    assert [(c.action, c.entity_key) for c in changes] == [
        ("create", "house-of-commons"),
        ("update", "house-of-commons"),
        ("update", "house-of-commons"),
    ]
    assert (changes[1].before or {})["name"] == "House of Commons"
    assert (changes[1].after or {})["name"] == "The House of Commons"


@pytest.mark.parametrize("path", ["/v1/bodies", "/v1/parties"])
def test_reference_errors(client: TestClient, anon: TestClient, path: str) -> None:
    assert client.post(path, json={"slug": "labour", "name": "Labour"}).status_code == 201
    r = client.post(path, json={"slug": "labour", "name": "Labour again"})
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    assert "labour" in r.json()["detail"]
    assert client.get(f"{path}/nope").status_code == 404
    assert client.patch(f"{path}/nope", json={"name": "X"}).status_code == 404
    r = client.post(path, json={"slug": "Not A Slug", "name": "X"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.slug"
    assert client.post(path, json={"slug": "x", "name": "X", "country": "GBR"}).status_code == 422
    assert anon.post(path, json={"slug": "green", "name": "Green"}).status_code == 401
    assert anon.patch(f"{path}/labour", json={"name": "X"}).status_code == 401


@pytest.mark.parametrize("path", ["/v1/bodies", "/v1/parties"])
def test_reference_pages(client: TestClient, path: str) -> None:
    slugs = [f"ref-{i}" for i in range(5)]
    for slug in slugs:
        client.post(path, json={"slug": slug, "name": slug.upper()})
    seen: list[str] = []
    url = f"{path}?limit=2"
    while url:
        r = client.get(url)
        page = r.json()
        seen += [item["slug"] for item in page["items"]]
        if page["next_cursor"]:
            assert 'rel="next"' in r.headers["link"]
            url = f"{path}?limit=2&cursor={page['next_cursor']}"
        else:
            url = ""
    assert seen == slugs


def test_bodies_count_seats_held_today(anon: TestClient, db: Session) -> None:
    commons, lords = b.body(db, "house-of-commons"), b.body(db, "house-of-lords")
    today = date.today()
    for i in range(3):
        b.membership(db, b.actor(db, f"Sitting {i}"), commons, None, date(2019, 12, 12))
    b.membership(db, b.actor(db, "Ended"), commons, None, date(2017, 6, 8), date(2019, 11, 6))
    b.membership(db, b.actor(db, "Ends today"), lords, None, date(2000, 1, 1), today)
    b.membership(db, b.actor(db, "Starts tomorrow"), lords, None, today + timedelta(days=1))
    listed = {item["slug"]: item["seats_today"] for item in anon.get("/v1/bodies").json()["items"]}
    assert listed == {"house-of-commons": 3, "house-of-lords": 1}
    assert anon.get("/v1/bodies/house-of-commons").json()["seats_today"] == 3
