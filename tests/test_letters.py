"""Letters: create, read, update, delete; filters, order and pages; counts; errors; change records."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from app.changes import record_change
from app.models import ChangeRecord, Claim, Letter, Signature, Source
from tests import builders as b

LETTER = {
    "slug": "uk-parliamentarians-to-ambassador-2020",
    "title": "Letter of 130 parliamentarians to the Ambassador",
    "summary": "On the treatment of the Uïghurs in Xinjiang",
    "published_on": "2020-09-09",
    "claimed_signatory_count": 130,
}


def test_create_read_update_delete_letter(client: TestClient, admin: TestClient, db: Session) -> None:
    client.post("/v1/campaigns", json={"slug": "xinjiang-2020", "name": "Xinjiang 2020"})
    r = client.post("/v1/letters", json={**LETTER, "campaign": "xinjiang-2020", "language": "en"})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/letters/{LETTER['slug']}"
    body = r.json()
    assert body["id"] > 0 and body["status"] == "published" and body["campaign"] == "xinjiang-2020"
    assert body["claimed_signatory_count"] == 130 and body["recorded_signatory_count"] == 0
    assert body["claims"] == [] and body["sources"] == [] and body["body"] is None
    assert set(body) >= {"created_at", "updated_at", "language", "summary", "title", "published_on"}

    got = client.get(f"/v1/letters/{LETTER['slug']}").json()
    assert got == body
    assert client.get("/v1/campaigns/xinjiang-2020").json()["letters"][0]["slug"] == LETTER["slug"]

    version = db.scalar(select(Letter.version).where(Letter.slug == LETTER["slug"]))
    r = client.patch(
        f"/v1/letters/{LETTER['slug']}", json={"status": "delivered", "campaign": None, "body": "Dear…"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "delivered" and r.json()["campaign"] is None and r.json()["body"] == "Dear…"
    db.expire_all()
    assert db.scalar(select(Letter.version).where(Letter.slug == LETTER["slug"])) == (version or 0) + 1

    assert client.delete(f"/v1/letters/{LETTER['slug']}").status_code == 403
    assert admin.delete(f"/v1/letters/{LETTER['slug']}").status_code == 204
    assert client.get(f"/v1/letters/{LETTER['slug']}").status_code == 404

    changes = db.scalars(
        select(ChangeRecord).where(ChangeRecord.entity == "letter").order_by(ChangeRecord.id)
    ).all()
    assert [c.action for c in changes] == ["create", "update", "delete"]
    assert all(c.entity_key == LETTER["slug"] for c in changes)
    assert changes[0].key_name.startswith("test-write-") and changes[2].key_name.startswith("test-admin-")
    assert (changes[1].before or {})["status"] == "published"
    assert (changes[1].after or {})["status"] == "delivered"
    assert (changes[1].after or {})["version"] == (changes[1].before or {})["version"] + 1


def test_delete_letter_with_signatures(admin: TestClient, db: Session) -> None:
    letter = b.letter(db, "gone")
    b.sign(db, letter, b.actor(db, "A"))
    db.commit()
    assert admin.delete("/v1/letters/gone").status_code == 204
    assert db.scalar(select(Signature.id).where(Signature.letter_id == letter.id)) is None


def test_writes_need_a_key(anon: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    r = anon.post("/v1/letters", json=LETTER)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    assert anon.patch("/v1/letters/l1", json={"title": "x"}).status_code == 401
    assert anon.delete("/v1/letters/l1").status_code == 401
    assert anon.get("/v1/letters/l1").status_code == 200


def test_duplicate_slug_is_409(client: TestClient) -> None:
    assert client.post("/v1/letters", json=LETTER).status_code == 201
    r = client.post("/v1/letters", json={**LETTER, "title": "Again"})
    assert r.status_code == 409 and LETTER["slug"] in r.json()["detail"]


def test_bad_input_is_422_naming_the_field(client: TestClient) -> None:
    r = client.post("/v1/letters", json={**LETTER, "published_on": "2020-13-45"})
    assert r.status_code == 422
    assert any(e["field"] == "body.published_on" for e in r.json()["errors"])

    r = client.post("/v1/letters", json={**LETTER, "campaign": "no-such-campaign"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.campaign"

    r = client.post("/v1/letters", json={**LETTER, "claimed_signatory_count": -1})
    assert r.status_code == 422
    r = client.post("/v1/letters", json={**LETTER, "status": "lost"})
    assert r.status_code == 422
    r = client.post("/v1/letters", json={**LETTER, "slug": "Not A Slug"})
    assert r.status_code == 422

    client.post("/v1/letters", json=LETTER)
    r = client.patch(f"/v1/letters/{LETTER['slug']}", json={"title": None})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.title"
    r = client.patch(f"/v1/letters/{LETTER['slug']}", json={"campaign": "nope"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.campaign"

    r = client.get("/v1/letters?published_from=yesterday")
    assert r.status_code == 422
    assert any(e["field"] == "query.published_from" for e in r.json()["errors"])


def test_unknown_letter_is_404(anon: TestClient) -> None:
    assert anon.get("/v1/letters/nope").status_code == 404
    assert anon.get("/v1/letters/nope/signatures").status_code == 404


def test_recorded_and_claimed_counts(client: TestClient, db: Session) -> None:
    letter = b.letter(db, "counted", claimed=130)
    other = b.letter(db, "other", claimed=5)
    for i in range(3):
        b.sign(db, letter, b.actor(db, f"Signed {i}"))
    b.sign(db, letter, b.actor(db, "Withdrew"), withdrawn_on=date(2020, 9, 10))
    b.sign(db, letter, b.actor(db, "Signs later"), signed_on=date.today() + timedelta(days=30))
    b.sign(db, other, b.actor(db, "Elsewhere"))
    db.commit()
    one = client.get("/v1/letters/counted").json()
    assert one["claimed_signatory_count"] == 130 and one["recorded_signatory_count"] == 3
    listed = {item["slug"]: item for item in client.get("/v1/letters").json()["items"]}
    assert listed["counted"] == one
    assert listed["other"]["recorded_signatory_count"] == 1


def test_list_items_carry_claims_and_sources(client: TestClient, db: Session) -> None:
    b.letter(db, "with-parts")
    db.commit()
    client.post("/v1/letters/with-parts/claims", json={"count": 133, "wording": "76 MPs and 57 Lords"})
    client.post("/v1/letters/with-parts/sources", json={"label": "HRW", "url": "https://www.hrw.org/"})
    item = client.get("/v1/letters").json()["items"][0]
    assert item["claims"][0]["count"] == 133 and item["claims"][0]["wording"] == "76 MPs and 57 Lords"
    assert item["sources"] == [
        {"id": item["sources"][0]["id"], "label": "HRW", "url": "https://www.hrw.org/"}
    ]


def test_filters(client: TestClient, db: Session) -> None:
    camp = b.campaign(db, "xinjiang-2020")
    mps = b.letter(db, "mps", title="Letter on the Uïghurs", campaign=camp, published_on=date(2020, 9, 9))
    ngos = b.letter(
        db, "ngos", title="Call for a UN mechanism", campaign=camp, published_on=date(2020, 9, 10)
    )
    old = b.letter(
        db, "old", title="Older LETTER about Tibet", published_on=date(2019, 1, 1), status="closed"
    )
    b.letter(db, "zh", title="致联合国秘书长的公开信", published_on=None, status="draft")
    alice, bob, amb = b.actor(db, "Alice"), b.actor(db, "Bob"), b.actor(db, "Liu Xiaoming")
    b.sign(db, mps, alice)
    b.sign(db, ngos, alice, withdrawn_on=date(2020, 9, 11))
    b.sign(db, old, bob)
    db.add_all([])
    db.commit()
    client.post("/v1/letters/mps/recipients", json={"actor_id": amb.id})

    def slugs(query: str) -> list[str]:
        r = client.get(f"/v1/letters?{query}")
        assert r.status_code == 200, r.text
        return [item["slug"] for item in r.json()["items"]]

    assert slugs("") == ["ngos", "mps", "old", "zh"]  # newest first, undated last
    assert slugs("q=uighur") == ["mps"]
    assert slugs("q=UÏGHURS letter") == ["mps"]
    assert sorted(slugs("q=letter")) == ["mps", "old"]  # (in the order of relevance: tests/test_search.py)
    assert slugs("q=联合国") == ["zh"]
    assert slugs("q=100%25") == []
    assert slugs("campaign=xinjiang-2020") == ["ngos", "mps"]
    assert slugs("campaign=unknown") == []
    assert slugs(f"signatory={alice.id}") == ["mps"]  # withdrawn from ngos
    assert slugs(f"signatory={bob.id}") == ["old"]
    assert slugs(f"recipient={amb.id}") == ["mps"]
    assert slugs("published_from=2020-09-10") == ["ngos"]
    assert slugs("published_to=2020-09-09") == ["mps", "old"]
    assert slugs("published_from=2020-01-01&published_to=2020-09-09") == ["mps"]
    assert slugs("status=closed") == ["old"]
    assert slugs("status=draft") == ["zh"]
    assert client.get("/v1/letters?status=lost").status_code == 422


def test_search_text_follows_updates(client: TestClient) -> None:
    client.post("/v1/letters", json={"slug": "s", "title": "First"})
    client.patch("/v1/letters/s", json={"summary": "Droits de l'Homme"})
    assert [i["slug"] for i in client.get("/v1/letters?q=droits homme").json()["items"]] == ["s"]
    assert client.get("/v1/letters?q=second").json()["items"] == []


def test_pages_are_complete_without_repeats(client: TestClient, db: Session) -> None:
    for i in range(11):
        # several letters on the same day, and some undated: the id breaks ties
        b.letter(db, f"page-{i:02d}", published_on=date(2020, 1, 1 + i % 3) if i % 4 else None)
    db.commit()
    seen: list[str] = []
    url = "/v1/letters?limit=3"
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200
        page = r.json()
        pages += 1
        seen += [item["slug"] for item in page["items"]]
        if page["next_cursor"]:
            assert r.headers["link"].endswith('>; rel="next"') and "cursor=" in r.headers["link"]
            url = r.headers["link"][1 : r.headers["link"].index(">")]
        else:
            assert "link" not in r.headers
            url = ""
    assert pages == 4
    assert len(seen) == len(set(seen)) == 11
    assert seen == [item["slug"] for item in client.get("/v1/letters?limit=100").json()["items"]]
    assert client.get("/v1/letters?cursor=garbage").status_code == 422


def test_list_pages_cost_a_fixed_number_of_queries(anon: TestClient, db: Session, engine: Engine) -> None:
    """Counts, campaigns, claims and sources of a page are loaded per page, never per letter."""
    camp = b.campaign(db, "c")
    anon.get("/v1/letters")  # the app's first read opens its own connections: a cost paid once

    def statements_for_list(n_letters: int) -> int:
        for i in range(n_letters):
            letter = b.letter(db, f"q-{n_letters}-{i}", campaign=camp)
            b.sign(db, letter, b.actor(db, f"A {n_letters} {i}"))
            db.add(Claim(letter_id=letter.id, count=i))
            db.add(Source(letter_id=letter.id, url="https://example.org/"))
        # as the service's writes do: the list is kept until a change is recorded
        record_change(db, "test", "create", "letter", f"q-{n_letters}")
        db.commit()
        seen: list[str] = []

        def count(*args: object) -> None:
            seen.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", count)
        try:
            r = anon.get("/v1/letters?limit=1000")
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert r.status_code == 200
        assert all(item["recorded_signatory_count"] == 1 for item in r.json()["items"])
        return len(seen)

    assert statements_for_list(3) == statements_for_list(12)


def test_text_limits_hold_for_what_was_sent_and_the_text_is_kept_trimmed(client: TestClient) -> None:
    """The OpenAPI document says a title is at most 1,000 characters and a slug matches its
    pattern: that holds for the text the client sent, before trimming."""
    padded = client.post(
        "/v1/letters", json={"slug": "trim", "title": "  Trimmed title \n", "summary": " s "}
    )
    assert padded.status_code == 201, padded.text
    assert (padded.json()["title"], padded.json()["summary"]) == ("Trimmed title", "s")
    long = client.post("/v1/letters", json={"slug": "long", "title": "\t" + "x" * 1000})
    assert long.status_code == 422 and long.json()["errors"][0]["field"] == "body.title"
    assert client.post("/v1/letters", json={"slug": " spaced", "title": "T"}).status_code == 422
    blank = client.post("/v1/letters", json={"slug": "blank", "title": "   "})
    assert blank.status_code == 422 and "blank" in blank.text
