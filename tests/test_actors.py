"""Actors over HTTP: CRUD, identifiers, the `q` filter in every script, filters, pages,
what an actor signed and received, and deletion rules."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Actor, ChangeRecord, Recipient
from tests import builders as b


def _ids(response_json: dict) -> list[int]:  # type: ignore[type-arg]
    return [item["id"] for item in response_json["items"]]


def test_create_read_update_actor_with_change_records(client: TestClient, db: Session) -> None:
    r = client.post(
        "/v1/actors",
        json={
            "kind": "person",
            "name": "Rt Hon Iain Duncan Smith MP",
            "country": "GB",
            "identifiers": [{"scheme": "ukparliament", "value": "152"}],
        },
    )
    assert r.status_code == 201, r.text
    actor = r.json()
    assert r.headers["location"] == f"/v1/actors/{actor['id']}"
    assert actor["country"] == "GB" and actor["identifiers"] == [{"scheme": "ukparliament", "value": "152"}]
    read = client.get(f"/v1/actors/{actor['id']}").json()
    stamps = ("created_at", "updated_at")
    assert {k: v for k, v in read.items() if k not in stamps} == {
        k: v for k, v in actor.items() if k not in stamps
    }

    r = client.patch(
        f"/v1/actors/{actor['id']}",
        json={
            "name": "Sir Iain Duncan Smith",
            "sort_name": "Duncan Smith, Iain",
            "identifiers": [
                {"scheme": "ukparliament", "value": "152"},
                {"scheme": "wikidata", "value": "Q332213"},
            ],
        },
    )
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["name"] == "Sir Iain Duncan Smith" and updated["sort_name"] == "Duncan Smith, Iain"
    assert {(i["scheme"], i["value"]) for i in updated["identifiers"]} == {
        ("ukparliament", "152"),
        ("wikidata", "Q332213"),
    }
    assert updated["country"] == "GB"  # untouched

    row = db.get(Actor, actor["id"])
    assert row is not None
    db.refresh(row)
    assert row.match_name == "iain duncan smith"
    assert row.search_text == "sir iain duncan smith duncan smith iain"

    # Replacing the list drops what is left out.
    r = client.patch(
        f"/v1/actors/{actor['id']}", json={"identifiers": [{"scheme": "wikidata", "value": "Q332213"}]}
    )
    assert r.json()["identifiers"] == [{"scheme": "wikidata", "value": "Q332213"}]
    assert client.get("/v1/actors?identifier=ukparliament:152").json()["items"] == []

    changes = db.scalars(
        select(ChangeRecord)
        .where(ChangeRecord.entity == "actor", ChangeRecord.entity_key == str(actor["id"]))
        .order_by(ChangeRecord.id)
    ).all()
    assert [c.action for c in changes] == ["create", "update", "update"]
    before, after = changes[1].before or {}, changes[1].after or {}
    assert before["name"] == "Rt Hon Iain Duncan Smith MP" and after["name"] == "Sir Iain Duncan Smith"
    assert before["identifiers"] == ["ukparliament:152"]
    assert after["identifiers"] == ["ukparliament:152", "wikidata:Q332213"]
    assert changes[1].key_name.startswith("test-write-")


def test_identifier_is_unique_on_create_and_on_patch(client: TestClient) -> None:
    first = client.post(
        "/v1/actors",
        json={
            "kind": "organisation",
            "name": "Human Rights Watch",
            "identifiers": [{"scheme": "wikidata", "value": "Q187052"}],
        },
    ).json()
    r = client.post(
        "/v1/actors",
        json={
            "kind": "organisation",
            "name": "HRW",
            "identifiers": [{"scheme": "wikidata", "value": "Q187052"}],
        },
    )
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["actor_id"] == first["id"]

    other = client.post("/v1/actors", json={"kind": "organisation", "name": "Amnesty International"}).json()
    r = client.patch(
        f"/v1/actors/{other['id']}", json={"identifiers": [{"scheme": "wikidata", "value": "Q187052"}]}
    )
    assert r.status_code == 409 and "Q187052" in r.json()["detail"]
    assert client.get(f"/v1/actors/{other['id']}").json()["identifiers"] == []

    # An actor keeps its own identifier when its list is given again.
    r = client.patch(
        f"/v1/actors/{first['id']}",
        json={
            "identifiers": [
                {"scheme": "wikidata", "value": "Q187052"},
                {"scheme": "website", "value": "https://www.hrw.org/"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    r = client.patch(
        f"/v1/actors/{first['id']}",
        json={"identifiers": [{"scheme": "wikidata", "value": "Q1"}, {"scheme": "wikidata", "value": "Q1"}]},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.identifiers"


def test_actor_input_is_validated(client: TestClient) -> None:
    r = client.post("/v1/actors", json={"kind": "person", "name": "A", "org_type": "ngo"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.org_type"
    r = client.post("/v1/actors", json={"kind": "robot", "name": "A"})
    assert r.status_code == 422
    person = client.post("/v1/actors", json={"kind": "person", "name": "A"}).json()
    r = client.patch(f"/v1/actors/{person['id']}", json={"org_type": "ngo"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.org_type"
    r = client.patch(f"/v1/actors/{person['id']}", json={"name": None})
    assert r.status_code == 422
    r = client.patch(f"/v1/actors/{person['id']}", json={"kind": "organisation"})
    assert r.status_code == 422  # kind is not changed by PATCH


def test_unknown_actor_is_404(client: TestClient) -> None:
    for response in (
        client.get("/v1/actors/999999"),
        client.patch("/v1/actors/999999", json={"name": "X"}),
        client.get("/v1/actors/999999/signatures"),
        client.get("/v1/actors/999999/letters-received"),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["title"] == "Not found"


def test_q_ignores_case_accents_and_punctuation(anon: TestClient, db: Session) -> None:
    ligue = b.actor(db, "LIGUE DES DROITS DE L'HOMME", kind="organisation")
    b.actor(db, "Ligue internationale", kind="organisation")
    helsinki = b.actor(db, "Norwegian Helsinki Committee", kind="organisation")
    cafe = b.actor(db, "Café Société Genève", kind="organisation")
    assert _ids(anon.get("/v1/actors", params={"q": "ligue des droits"}).json()) == [ligue.id]
    assert _ids(anon.get("/v1/actors", params={"q": "droits LIGUE l’homme"}).json()) == [ligue.id]
    assert _ids(anon.get("/v1/actors", params={"q": "helsinki"}).json()) == [helsinki.id]
    assert _ids(anon.get("/v1/actors", params={"q": "geneve SOCIÉTÉ"}).json()) == [cafe.id]
    assert _ids(anon.get("/v1/actors", params={"q": "100%"}).json()) == []
    r = anon.get("/v1/actors", params={"q": "?!"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.q"


def test_q_works_for_chinese_and_uyghur_names(anon: TestClient, db: Session) -> None:
    wuc = b.actor(db, "世界维吾尔代表大会", kind="organisation")
    uyghur = b.actor(db, "ئۇيغۇر كىشىلىك ھوقۇق قۇرۇلۇشى", kind="organisation")
    b.actor(db, "World Uyghur Congress", kind="organisation")
    assert _ids(anon.get("/v1/actors", params={"q": "维吾尔"}).json()) == [wuc.id]
    assert _ids(anon.get("/v1/actors", params={"q": "世界维吾尔代表大会"}).json()) == [wuc.id]
    assert _ids(anon.get("/v1/actors", params={"q": "ئۇيغۇر"}).json()) == [uyghur.id]
    assert _ids(anon.get("/v1/actors", params={"q": "ھوقۇق ئۇيغۇر"}).json()) == [uyghur.id]
    assert _ids(anon.get("/v1/actors", params={"q": "uyghur congress"}).json()) != [uyghur.id]


def test_filters_kind_country_org_type_identifier(anon: TestClient, db: Session) -> None:
    hrw = b.actor(
        db,
        "Human Rights Watch",
        kind="organisation",
        country="US",
        org_type="ngo",
        identifiers={"wikidata": "Q187052"},
    )
    tuc = b.actor(db, "Trades Union Congress", kind="organisation", country="GB", org_type="union")
    mp = b.actor(
        db, "Nusrat Ghani", kind="person", country="GB", identifiers={"website": "https://example.org/a:b"}
    )
    assert set(_ids(anon.get("/v1/actors?kind=person").json())) >= {mp.id}
    assert hrw.id not in _ids(anon.get("/v1/actors?kind=person").json())
    both_gb = _ids(anon.get("/v1/actors?country=gb").json())
    assert tuc.id in both_gb and mp.id in both_gb and hrw.id not in both_gb
    assert _ids(anon.get("/v1/actors?country=GB&kind=organisation&org_type=union&q=congress").json()) == [
        tuc.id
    ]
    assert _ids(anon.get("/v1/actors?identifier=wikidata:Q187052").json()) == [hrw.id]
    assert _ids(anon.get("/v1/actors?identifier=wikidata:q187052").json()) == []  # exact
    assert _ids(anon.get("/v1/actors", params={"identifier": "website:https://example.org/a:b"}).json()) == [
        mp.id
    ]
    r = anon.get("/v1/actors?identifier=Q187052")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.identifier"
    assert anon.get("/v1/actors?org_type=church").status_code == 422
    assert anon.get("/v1/actors?country=GBR").status_code == 422


def test_party_and_body_filters_use_memberships_valid_on_the_day(anon: TestClient, db: Session) -> None:
    commons, lords = b.body(db, "house-of-commons"), b.body(db, "house-of-lords")
    labour, conservative = b.party(db, "labour"), b.party(db, "conservative")
    sitting = b.actor(db, "Sitting Labour MP")
    b.membership(db, sitting, commons, labour, date(2019, 12, 12))
    switched = b.actor(db, "Changed Party")
    b.membership(db, switched, commons, conservative, date(2015, 5, 7), date(2021, 1, 1))
    b.membership(db, switched, commons, labour, date(2021, 1, 2))
    retired = b.actor(db, "Retired Peer")
    b.membership(db, retired, lords, None, date(2000, 1, 1), date(2020, 9, 1))

    assert _ids(anon.get("/v1/actors?party=labour").json()) == [sitting.id, switched.id]
    assert _ids(anon.get("/v1/actors?party=labour&on=2020-09-09").json()) == [sitting.id]
    assert _ids(anon.get("/v1/actors?party=conservative&on=2020-09-09").json()) == [switched.id]
    assert _ids(anon.get("/v1/actors?party=conservative&on=2021-01-01").json()) == [switched.id]
    assert _ids(anon.get("/v1/actors?party=conservative&on=2021-01-02").json()) == []
    assert _ids(anon.get("/v1/actors?body=house-of-lords&on=2020-09-01").json()) == [retired.id]
    assert _ids(anon.get("/v1/actors?body=house-of-lords&on=2020-09-02").json()) == []
    assert _ids(anon.get("/v1/actors?body=house-of-commons&party=labour&on=2022-01-01").json()) == [
        sitting.id,
        switched.id,
    ]
    assert _ids(anon.get("/v1/actors?body=house-of-lords&party=labour").json()) == []
    r = anon.get("/v1/actors?party=no-such-party")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.party"


def test_a_seat_filter_says_which_day_it_used(anon: TestClient, db: Session) -> None:
    """Without `on`, `body` and `party` select by today's seats, and the answer says so."""
    commons = b.body(db, "house-of-commons")
    b.membership(db, b.actor(db, "Sitting MP"), commons, None, date(2019, 12, 12))
    today = anon.get("/v1/actors?body=house-of-commons", headers={"Origin": "https://dash.example"})
    assert today.status_code == 200
    assert today.headers["seats-on"] == date.today().isoformat()
    assert "Seats-On" in today.headers["access-control-expose-headers"]  # a dashboard can read it
    assert anon.get("/v1/actors?body=house-of-commons&on=2020-09-09").headers["seats-on"] == "2020-09-09"
    assert "seats-on" not in anon.get("/v1/actors?kind=person").headers
    described = anon.get("/openapi.json").json()["paths"]["/v1/actors"]["get"]
    assert "today" in described["description"]
    assert "Seats-On" in described["responses"]["200"]["headers"]


def test_actor_pages_are_complete_without_repeats(anon: TestClient, db: Session) -> None:
    made = [b.actor(db, f"Paged Actor {i}", kind="organisation").id for i in range(7)]
    seen: list[int] = []
    url = "/v1/actors?limit=3&q=paged actor"
    pages = 0
    while url:
        r = anon.get(url)
        assert r.status_code == 200
        page = r.json()
        seen += _ids(page)
        pages += 1
        if page["next_cursor"]:
            assert r.headers["link"].endswith('rel="next"') and page["next_cursor"] in r.headers["link"]
            url = f"/v1/actors?limit=3&q=paged actor&cursor={page['next_cursor']}"
        else:
            assert "link" not in r.headers
            url = ""
    assert seen == made and pages == 3
    assert anon.get("/v1/actors?cursor=garbage").status_code == 422


def test_writes_need_a_key(anon: TestClient, db: Session) -> None:
    someone = b.actor(db, "Someone")
    assert anon.post("/v1/actors", json={"kind": "person", "name": "X"}).status_code == 401
    assert anon.patch(f"/v1/actors/{someone.id}", json={"name": "X"}).status_code == 401
    r = anon.delete(f"/v1/actors/{someone.id}")
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")


def test_delete_needs_admin_and_refuses_actors_with_signatures_or_letters(
    client: TestClient, admin: TestClient, db: Session
) -> None:
    house = b.body(db, "house-of-commons")
    gone = client.post(
        "/v1/actors",
        json={"kind": "person", "name": "Gone", "identifiers": [{"scheme": "wikidata", "value": "Q9"}]},
    ).json()
    assert (
        client.post(
            f"/v1/actors/{gone['id']}/memberships", json={"body": house.slug, "start_date": "2019-12-12"}
        ).status_code
        == 201
    )
    assert client.delete(f"/v1/actors/{gone['id']}").status_code == 403
    assert admin.delete(f"/v1/actors/{gone['id']}").status_code == 204
    assert admin.get(f"/v1/actors/{gone['id']}").status_code == 404
    assert admin.delete(f"/v1/actors/{gone['id']}").status_code == 404
    record = db.scalars(
        select(ChangeRecord).where(ChangeRecord.entity == "actor", ChangeRecord.action == "delete")
    ).one()
    assert record.entity_key == str(gone["id"]) and record.key_name.startswith("test-admin-")
    assert (record.before or {})["identifiers"] == ["wikidata:Q9"]
    assert (record.before or {})["memberships"][0]["body"] == "house-of-commons"
    # The identifier is free again.
    assert (
        client.post(
            "/v1/actors",
            json={"kind": "person", "name": "New", "identifiers": [{"scheme": "wikidata", "value": "Q9"}]},
        ).status_code
        == 201
    )

    letter = b.letter(db, "to-the-ambassador")
    signer = b.actor(db, "Signed Once")
    b.sign(db, letter, signer)
    addressee = b.actor(db, "Liu Xiaoming")
    db.add(Recipient(letter_id=letter.id, actor_id=addressee.id, role="to"))
    db.flush()
    for kept in (signer, addressee):
        r = admin.delete(f"/v1/actors/{kept.id}")
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert admin.get(f"/v1/actors/{kept.id}").status_code == 200


def test_actor_signatures_newest_first_with_letters(anon: TestClient, db: Session) -> None:
    who = b.actor(db, "Signs Often")
    older = b.letter(db, "older-letter", published_on=date(2020, 9, 9), title="Older letter")
    newer = b.letter(db, "newer-letter", published_on=date(2021, 3, 1), title="Newer letter", status="open")
    same_day = b.letter(db, "same-day-letter", published_on=date(2021, 3, 1))
    b.sign(db, older, who, capacity="MP")
    b.sign(db, newer, who, withdrawn_on=date(2021, 4, 1))
    b.sign(db, same_day, who)
    b.sign(db, older, b.actor(db, "Someone Else"))

    r = anon.get(f"/v1/actors/{who.id}/signatures")
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["letter"]["slug"] for i in items] == ["same-day-letter", "newer-letter", "older-letter"]
    assert items[1] == {
        "letter": {
            "slug": "newer-letter",
            "title": "Newer letter",
            "published_on": "2021-03-01",
            "status": "open",
        },
        "signed_on": "2021-03-01",
        "capacity": None,
        "affiliation": None,
        "position": None,
        "status": "confirmed",
        "withdrawn_on": "2021-04-01",
    }
    assert items[2]["capacity"] == "MP"

    slugs: list[str] = []
    url = f"/v1/actors/{who.id}/signatures?limit=1"
    while url:
        page = anon.get(url).json()
        slugs += [i["letter"]["slug"] for i in page["items"]]
        url = (
            f"/v1/actors/{who.id}/signatures?limit=1&cursor={page['next_cursor']}"
            if page["next_cursor"]
            else ""
        )
    assert slugs == ["same-day-letter", "newer-letter", "older-letter"]


def test_actor_letters_received(anon: TestClient, db: Session) -> None:
    ambassador = b.actor(db, "Liu Xiaoming")
    first = b.letter(db, "to-the-ambassador", title="To the ambassador")
    second = b.letter(db, "copied-letter")
    db.add(Recipient(letter_id=first.id, actor_id=ambassador.id, role="to", capacity="Ambassador"))
    db.add(Recipient(letter_id=second.id, actor_id=ambassador.id, role="cc"))
    db.flush()
    assert anon.get(f"/v1/actors/{b.actor(db, 'Nobody').id}/letters-received").json() == {
        "items": [],
        "next_cursor": None,
    }
    page = anon.get(f"/v1/actors/{ambassador.id}/letters-received?limit=1").json()
    assert page["items"] == [
        {
            "letter": {
                "slug": "to-the-ambassador",
                "title": "To the ambassador",
                "published_on": "2020-09-09",
                "status": "published",
            },
            "role": "to",
            "capacity": "Ambassador",
        }
    ]
    rest = anon.get(f"/v1/actors/{ambassador.id}/letters-received?cursor={page['next_cursor']}").json()
    assert [(i["letter"]["slug"], i["role"]) for i in rest["items"]] == [("copied-letter", "cc")]
    assert rest["next_cursor"] is None
