"""Memberships: a person's dated seats, by slug of body and party, validated and change-recorded."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ChangeRecord, Membership
from tests import builders as b


def _reference(db: Session) -> None:
    b.body(db, "house-of-commons", "House of Commons")
    b.body(db, "house-of-lords", "House of Lords")
    b.party(db, "labour", "Labour Party")
    b.party(db, "conservative", "Conservative Party")


def test_add_list_update_and_delete_memberships(client: TestClient, admin: TestClient, db: Session) -> None:
    _reference(db)
    mp = b.actor(db, "Two Seats")
    url = f"/v1/actors/{mp.id}/memberships"
    r = client.post(
        url,
        json={
            "body": "house-of-commons",
            "party": "labour",
            "constituency": "Bolton South East",
            "start_date": "2019-12-12",
            "end_date": None,
        },
    )
    assert r.status_code == 201, r.text
    current = r.json()
    assert r.headers["location"] == f"{url}/{current['id']}"
    assert current == {
        "id": current["id"],
        "actor_id": mp.id,
        "body": "house-of-commons",
        "body_name": "House of Commons",
        "party": "labour",
        "party_name": "Labour Party",
        "constituency": "Bolton South East",
        "start_date": "2019-12-12",
        "end_date": None,
    }
    r = client.post(
        url, json={"body": "house-of-lords", "start_date": "2010-05-06", "end_date": "2019-11-06"}
    )
    assert r.status_code == 201, r.text
    earlier = r.json()
    assert earlier["party"] is None and earlier["party_name"] is None and earlier["constituency"] is None

    listed = client.get(url).json()
    assert [m["id"] for m in listed["items"]] == [earlier["id"], current["id"]]  # by start_date
    assert listed["items"][1] == current and listed["next_cursor"] is None
    first = client.get(f"{url}?limit=1")
    assert 'rel="next"' in first.headers["link"]
    second = client.get(f"{url}?limit=1&cursor={first.json()['next_cursor']}").json()
    assert [m["id"] for m in first.json()["items"] + second["items"]] == [earlier["id"], current["id"]]
    assert client.get(f"{url}/{current['id']}").json() == current

    r = client.patch(f"{url}/{current['id']}", json={"end_date": "2024-05-30", "party": "conservative"})
    assert r.status_code == 200, r.text
    assert r.json()["end_date"] == "2024-05-30" and r.json()["party_name"] == "Conservative Party"
    assert r.json()["constituency"] == "Bolton South East"
    r = client.patch(f"{url}/{current['id']}", json={"party": None})
    assert r.status_code == 200 and r.json()["party"] is None

    assert admin.delete(f"{url}/{earlier['id']}").status_code == 204
    assert client.get(f"{url}/{earlier['id']}").status_code == 404
    assert [m["id"] for m in client.get(url).json()["items"]] == [current["id"]]

    changes = db.scalars(
        select(ChangeRecord).where(ChangeRecord.entity == "membership").order_by(ChangeRecord.id)
    ).all()
    assert [(c.action, c.entity_key) for c in changes] == [
        ("create", str(current["id"])),
        ("create", str(earlier["id"])),
        ("update", str(current["id"])),
        ("update", str(current["id"])),
        ("delete", str(earlier["id"])),
    ]
    before, after = changes[2].before or {}, changes[2].after or {}
    assert before["end_date"] is None and after["end_date"] == "2024-05-30"
    assert before["party"] == "labour" and after["party"] == "conservative"
    assert (changes[4].before or {})["body"] == "house-of-lords" and changes[4].after is None


def test_membership_validation(client: TestClient, db: Session) -> None:
    _reference(db)
    person = b.actor(db, "A Person")
    url = f"/v1/actors/{person.id}/memberships"

    def field_of(payload: dict[str, object]) -> str:
        r = client.post(url, json=payload)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        return str(r.json()["errors"][0]["field"])

    assert field_of({"body": "no-such-body", "start_date": "2019-12-12"}) == "body.body"
    assert (
        field_of({"body": "house-of-commons", "party": "no-such-party", "start_date": "2019-12-12"})
        == "body.party"
    )
    assert (
        field_of({"body": "house-of-commons", "start_date": "2019-12-12", "end_date": "2019-12-11"})
        == "body.end_date"
    )
    assert field_of({"body": "house-of-commons", "start_date": "not a date"}) == "body.start_date"
    assert field_of({"body": "house-of-commons"}) == "body.start_date"
    assert field_of({"body": "house-of-commons", "start_date": "2019-12-12", "seat": 3}) == "body.seat"

    ngo = b.actor(db, "An NGO", kind="organisation")
    r = client.post(
        f"/v1/actors/{ngo.id}/memberships", json={"body": "house-of-commons", "start_date": "2019-12-12"}
    )
    assert r.status_code == 422 and "only persons" in r.json()["detail"]
    r = client.post(
        "/v1/actors/999999/memberships", json={"body": "house-of-commons", "start_date": "2019-12-12"}
    )
    assert r.status_code == 404

    # A one-day seat is fine; a PATCH that makes it end before it starts is not.
    r = client.post(
        url, json={"body": "house-of-commons", "start_date": "2019-12-12", "end_date": "2019-12-12"}
    )
    assert r.status_code == 201
    seat = r.json()["id"]
    r = client.patch(f"{url}/{seat}", json={"start_date": "2020-01-01"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.end_date"
    r = client.patch(f"{url}/{seat}", json={"body": None})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.body"
    r = client.patch(f"{url}/{seat}", json={"body": "atlantis"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.body"
    assert (
        db.scalars(select(Membership.start_date).where(Membership.id == seat)).one().isoformat()
        == "2019-12-12"
    )
    assert not db.scalars(select(ChangeRecord).where(ChangeRecord.action == "update")).all()


def test_membership_belongs_to_its_actor(client: TestClient, admin: TestClient, db: Session) -> None:
    _reference(db)
    one, other = b.actor(db, "One"), b.actor(db, "Other")
    seat = client.post(
        f"/v1/actors/{one.id}/memberships", json={"body": "house-of-commons", "start_date": "2019-12-12"}
    ).json()
    assert client.get(f"/v1/actors/{other.id}/memberships/{seat['id']}").status_code == 404
    assert (
        client.patch(f"/v1/actors/{other.id}/memberships/{seat['id']}", json={"end_date": None}).status_code
        == 404
    )
    assert client.delete(f"/v1/actors/{one.id}/memberships/{seat['id']}").status_code == 403  # admin's
    assert admin.delete(f"/v1/actors/{other.id}/memberships/{seat['id']}").status_code == 404
    assert client.get("/v1/actors/999999/memberships").status_code == 404
    assert client.get(f"/v1/actors/{one.id}/memberships/{seat['id']}").status_code == 200


def test_membership_writes_need_a_key(anon: TestClient, db: Session) -> None:
    _reference(db)
    person = b.actor(db, "Keyless")
    seat = b.membership(db, person, b.body(db, "senedd"), None, date(2021, 5, 6))
    url = f"/v1/actors/{person.id}/memberships"
    assert anon.post(url, json={"body": "senedd", "start_date": "2021-05-06"}).status_code == 401
    assert anon.patch(f"{url}/{seat.id}", json={"end_date": "2022-01-01"}).status_code == 401
    assert anon.delete(f"{url}/{seat.id}").status_code == 401
    assert anon.get(url).json()["items"][0]["body"] == "senedd"
