"""A letter's recipients, events, claims and sources."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ChangeRecord, Letter, Recipient
from tests import builders as b

AMBASSADOR = {
    "actor": {"kind": "person", "name": "Liu Xiaoming", "country": "CN"},
    "role": "to",
    "capacity": "Ambassador of the People's Republic of China to the UK",
}


def _version(db: Session, slug: str) -> int:
    db.expire_all()
    return int(db.scalar(select(Letter.version).where(Letter.slug == slug)) or 0)


def test_recipients(client: TestClient, admin: TestClient, db: Session) -> None:
    b.letter(db, "mps")
    guterres = b.actor(db, "António Guterres")
    db.commit()
    v = _version(db, "mps")

    r = client.post("/v1/letters/mps/recipients", json=AMBASSADOR)
    assert r.status_code == 201, r.text
    ambassador = r.json()
    ambassador_url = f"/v1/letters/mps/recipients/{ambassador['id']}"
    assert r.headers["location"] == ambassador_url
    assert ambassador["letter"] == "mps" and ambassador["role"] == "to"
    assert ambassador["actor"]["name"] == "Liu Xiaoming" and ambassador["actor"]["identifiers"] == []
    assert ambassador["capacity"] == AMBASSADOR["capacity"]
    assert _version(db, "mps") == v + 1

    r = client.post("/v1/letters/mps/recipients", json={"actor_id": guterres.id, "role": "cc"})
    assert r.status_code == 201 and r.json()["role"] == "cc"
    # the same actor in the other role is fine; in the same role, a 409
    assert client.post("/v1/letters/mps/recipients", json={"actor_id": guterres.id}).status_code == 201
    r = client.post("/v1/letters/mps/recipients", json={"actor_id": guterres.id, "role": "cc"})
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")

    listed = client.get("/v1/letters/mps/recipients").json()
    assert [(i["actor"]["name"], i["role"]) for i in listed["items"]] == [
        ("Liu Xiaoming", "to"),
        ("António Guterres", "cc"),
        ("António Guterres", "to"),
    ]
    assert listed["items"][0] == client.get(ambassador_url).json()
    assert client.get("/v1/letters?recipient=" + str(guterres.id)).json()["items"][0]["slug"] == "mps"

    r = client.post("/v1/letters/mps/recipients", json={"actor_id": 999999})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.actor_id"
    assert (
        client.post("/v1/letters/mps/recipients", json={"actor_id": guterres.id, "role": "bcc"}).status_code
        == 422
    )

    assert client.delete(ambassador_url).status_code == 403  # a hard delete: admin's
    assert admin.delete(ambassador_url).status_code == 204
    assert client.get(ambassador_url).status_code == 404
    assert admin.delete(ambassador_url).status_code == 404
    assert db.scalar(select(Recipient.id).where(Recipient.id == ambassador["id"])) is None

    changes = db.scalars(
        select(ChangeRecord).where(ChangeRecord.entity == "recipient").order_by(ChangeRecord.id)
    ).all()
    assert [c.action for c in changes] == ["create", "create", "create", "delete"]
    assert changes[-1].entity_key == f"mps/{ambassador['id']}"
    assert (changes[-1].before or {})["capacity"] == AMBASSADOR["capacity"]
    assert all(c.key_name.startswith("test-write-") for c in changes[:-1])
    assert changes[-1].key_name.startswith("test-admin-")


def test_events_in_date_order(client: TestClient, db: Session) -> None:
    b.letter(db, "l")
    db.commit()
    posted = [
        {"date": "2020-09-20", "kind": "response", "note": "The embassy answers"},
        {"date": "2020-09-09", "kind": "published", "note": "Published", "url": "https://example.org/a"},
        {"date": "2020-09-10", "kind": "delivered"},
        {"date": "2020-09-09", "kind": "other", "note": "Press conference"},
    ]
    for event in posted:
        r = client.post("/v1/letters/l/events", json=event)
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"/v1/letters/l/events/{r.json()['id']}"
    r = client.get("/v1/letters/l/events?limit=3")
    page = r.json()
    assert [(e["date"], e["kind"]) for e in page["items"]] == [
        ("2020-09-09", "published"),
        ("2020-09-09", "other"),
        ("2020-09-10", "delivered"),
    ]
    assert page["items"][0]["url"] == "https://example.org/a" and page["items"][0]["letter"] == "l"
    rest = client.get(f"/v1/letters/l/events?limit=3&cursor={page['next_cursor']}").json()
    assert [e["kind"] for e in rest["items"]] == ["response"] and rest["next_cursor"] is None
    one = client.get(f"/v1/letters/l/events/{rest['items'][0]['id']}")
    assert one.json() == rest["items"][0]

    assert (
        client.post("/v1/letters/l/events", json={"date": "2020-09-09", "kind": "party"}).status_code == 422
    )
    r = client.post("/v1/letters/l/events", json={"date": "09/09/2020", "kind": "other"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.date"
    assert client.post("/v1/letters/nope/events", json=posted[0]).status_code == 404
    keys = db.scalars(select(ChangeRecord.entity_key).where(ChangeRecord.entity == "event")).all()
    assert len(keys) == 4 and all(k.startswith("l/") for k in keys)


def test_claims_and_sources(client: TestClient, db: Session) -> None:
    b.letter(db, "mps", claimed=130)
    db.commit()
    v = _version(db, "mps")
    claims = [
        {"count": 130, "url": "https://example.org/130"},
        {"count": 133, "wording": "76 MPs and 57 Lords"},
        {"wording": "more than 100"},
    ]
    made = []
    for claim in claims:
        r = client.post("/v1/letters/mps/claims", json=claim)
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"/v1/letters/mps/claims/{r.json()['id']}"
        made.append(r.json())
    assert made[2] == {"id": made[2]["id"], "count": None, "wording": "more than 100", "url": None}
    r = client.post("/v1/letters/mps/claims", json={"url": "https://example.org/"})
    assert r.status_code == 422
    assert client.post("/v1/letters/mps/claims", json={"count": -5}).status_code == 422
    assert client.get(f"/v1/letters/mps/claims/{made[1]['id']}").json() == made[1]

    r = client.post(
        "/v1/letters/mps/sources", json={"label": "Hansard", "url": "https://hansard.parliament.uk/"}
    )
    assert r.status_code == 201 and r.headers["location"] == f"/v1/letters/mps/sources/{r.json()['id']}"
    source = r.json()
    r = client.post("/v1/letters/mps/sources", json={"label": "no url"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.url"
    assert client.post("/v1/letters/mps/sources", json={"url": "not a url"}).status_code == 422

    assert client.get("/v1/letters/mps/claims").json() == {"items": made, "next_cursor": None}
    assert client.get("/v1/letters/mps/sources").json() == {"items": [source], "next_cursor": None}
    letter = client.get("/v1/letters/mps").json()
    assert letter["claims"] == made and letter["sources"] == [source]
    assert letter["claimed_signatory_count"] == 130
    assert _version(db, "mps") == v + 4

    entities = db.scalars(
        select(ChangeRecord.entity).where(ChangeRecord.entity.in_(["claim", "source"]))
    ).all()
    assert sorted(entities) == ["claim", "claim", "claim", "source"]


def test_part_writes_need_a_key(anon: TestClient, db: Session) -> None:
    b.letter(db, "l", published_on=date(2020, 9, 9))
    db.commit()
    for part, body in [
        ("recipients", AMBASSADOR),
        ("events", {"date": "2020-09-09", "kind": "published"}),
        ("claims", {"count": 1}),
        ("sources", {"url": "https://example.org/"}),
    ]:
        assert anon.post(f"/v1/letters/l/{part}", json=body).status_code == 401
        assert anon.get(f"/v1/letters/l/{part}").status_code == 200
    assert anon.delete("/v1/letters/l/recipients/1").status_code == 401
