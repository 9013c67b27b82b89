"""Signatures: add by id and inline, duplicates, withdrawals, corrections, filters on the
signing day, and the streamed CSV and NDJSON exports."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.auth import Writer
from app.config import Settings
from app.db.database import Database, session_scope
from app.db.engine import create_engine_for
from app.errors import Conflict
from app.http.conditional import etag_for
from app.letters import service
from app.letters.schemas import SignatureCreate
from app.models import Actor, ChangeRecord, Letter, Signature
from tests import builders as b
from tests.waiting import wait_for

EXPORT_COLUMNS = [
    "actor_id",
    "name",
    "kind",
    "country",
    "org_type",
    "body",
    "party",
    "capacity",
    "affiliation",
    "signed_on",
    "withdrawn_on",
    "position",
    "status",
    "source",
]


def _version(db: Session, slug: str) -> int:
    db.expire_all()
    return int(db.scalar(select(Letter.version).where(Letter.slug == slug)) or 0)


def test_add_by_id_and_inline(client: TestClient, db: Session) -> None:
    b.letter(db, "mps", published_on=date(2020, 9, 9))
    alice = b.actor(db, "Alice Example", country="GB", identifiers={"ukparliament": "4514"})
    db.commit()
    v0 = _version(db, "mps")

    r = client.post(
        "/v1/letters/mps/signatures", json={"actor_id": alice.id, "capacity": "MP", "position": 1}
    )
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/letters/mps/signatures/{alice.id}"
    sig = r.json()
    assert sig["letter"] == "mps" and sig["signed_on"] == "2020-09-09"  # the letter's date
    assert sig["actor"]["id"] == alice.id and sig["actor"]["name"] == "Alice Example"
    assert sig["actor"]["identifiers"] == [{"scheme": "ukparliament", "value": "4514"}]
    assert sig["capacity"] == "MP" and sig["position"] == 1 and sig["status"] == "confirmed"
    assert sig["withdrawn_on"] is None and "created_at" in sig and "updated_at" in sig
    assert _version(db, "mps") == v0 + 1

    r = client.post(
        "/v1/letters/mps/signatures",
        json={
            "actor": {"kind": "organisation", "name": "Human Rights Watch", "org_type": "ngo"},
            "signed_on": "2020-09-10",
            "affiliation": "HRW",
            "status": "unverified",
        },
    )
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["actor"]["kind"] == "organisation" and new["actor"]["org_type"] == "ngo"
    assert new["signed_on"] == "2020-09-10" and new["status"] == "unverified"
    assert db.get(Actor, new["actor"]["id"]) is not None

    got = client.get(f"/v1/letters/mps/signatures/{new['actor']['id']}")
    assert got.status_code == 200 and got.json()["affiliation"] == "HRW"
    assert client.get("/v1/letters/mps").json()["recorded_signatory_count"] == 2

    changes = db.scalars(select(ChangeRecord).where(ChangeRecord.entity == "signature")).all()
    assert sorted(c.entity_key for c in changes) == sorted([f"mps/{alice.id}", f"mps/{new['actor']['id']}"])
    assert all(c.key_name.startswith("test-write-") and c.action == "create" for c in changes)


def test_undated_letter_signs_today(client: TestClient, db: Session) -> None:
    b.letter(db, "undated", published_on=None)
    a = b.actor(db, "A")
    db.commit()
    r = client.post("/v1/letters/undated/signatures", json={"actor_id": a.id})
    assert r.status_code == 201 and r.json()["signed_on"] == date.today().isoformat()


def test_bad_signature_input(client: TestClient, db: Session) -> None:
    b.letter(db, "l")
    a = b.actor(db, "A")
    db.commit()
    both = {"actor_id": a.id, "actor": {"kind": "person", "name": "B"}}
    assert client.post("/v1/letters/l/signatures", json=both).status_code == 422
    assert client.post("/v1/letters/l/signatures", json={"capacity": "MP"}).status_code == 422
    r = client.post("/v1/letters/l/signatures", json={"actor_id": 999999})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.actor_id"
    r = client.post(
        "/v1/letters/l/signatures", json={"actor": {"kind": "person", "name": "P", "org_type": "ngo"}}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.actor.org_type"
    r = client.post("/v1/letters/l/signatures", json={"actor_id": a.id, "signed_on": "not-a-date"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.signed_on"
    assert client.post("/v1/letters/nope/signatures", json={"actor_id": a.id}).status_code == 404
    assert client.get(f"/v1/letters/l/signatures/{a.id}").status_code == 404


def test_duplicate_signature_is_409(client: TestClient, db: Session) -> None:
    b.letter(db, "l")
    a = b.actor(db, "A")
    db.commit()
    assert client.post("/v1/letters/l/signatures", json={"actor_id": a.id}).status_code == 201
    r = client.post("/v1/letters/l/signatures", json={"actor_id": a.id, "capacity": "again"})
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    assert db.scalar(select(Signature.capacity).where(Signature.actor_id == a.id)) is None


def test_withdrawal_is_kept_with_its_date(client: TestClient, db: Session) -> None:
    b.letter(db, "l", published_on=date(2020, 9, 9), claimed=2)
    a, c = b.actor(db, "A"), b.actor(db, "C")
    db.commit()
    client.post("/v1/letters/l/signatures", json={"actor_id": a.id})
    client.post("/v1/letters/l/signatures", json={"actor_id": c.id})
    v = _version(db, "l")

    r = client.delete(f"/v1/letters/l/signatures/{a.id}?on=2020-09-08")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.on"
    r = client.delete(f"/v1/letters/l/signatures/{a.id}?on=someday")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.on"

    r = client.delete(f"/v1/letters/l/signatures/{a.id}?on=2020-09-20")
    assert r.status_code == 200, r.text
    assert r.json()["withdrawn_on"] == "2020-09-20" and r.json()["actor"]["id"] == a.id
    assert _version(db, "l") == v + 1
    assert client.delete(f"/v1/letters/l/signatures/{a.id}").status_code == 409

    # kept, listed with its date, not counted
    assert client.get(f"/v1/letters/l/signatures/{a.id}").json()["withdrawn_on"] == "2020-09-20"
    items = client.get("/v1/letters/l/signatures").json()["items"]
    assert {i["actor"]["id"]: i["withdrawn_on"] for i in items} == {a.id: "2020-09-20", c.id: None}
    kept = client.get("/v1/letters/l/signatures?include_withdrawn=false").json()["items"]
    assert [i["actor"]["id"] for i in kept] == [c.id]
    letter = client.get("/v1/letters/l").json()
    assert letter["recorded_signatory_count"] == 1 and letter["claimed_signatory_count"] == 2

    # signing again is a 409 that says so; a PATCH reinstates
    r = client.post("/v1/letters/l/signatures", json={"actor_id": a.id})
    assert r.status_code == 409 and "withdrew" in r.json()["detail"]
    r = client.patch(f"/v1/letters/l/signatures/{a.id}", json={"withdrawn_on": None})
    assert r.status_code == 200 and r.json()["withdrawn_on"] is None
    assert client.get("/v1/letters/l").json()["recorded_signatory_count"] == 2

    client.delete(f"/v1/letters/l/signatures/{c.id}")  # default: today
    assert client.get(f"/v1/letters/l/signatures/{c.id}").json()["withdrawn_on"] == date.today().isoformat()

    changes = db.scalars(
        select(ChangeRecord).where(ChangeRecord.entity_key == f"l/{a.id}").order_by(ChangeRecord.id)
    ).all()
    assert [ch.action for ch in changes] == ["create", "withdraw", "update"]
    assert (changes[1].before or {})["withdrawn_on"] is None
    assert (changes[1].after or {})["withdrawn_on"] == "2020-09-20"


def test_update_signature(client: TestClient, db: Session) -> None:
    b.letter(db, "l", published_on=date(2020, 9, 9))
    a = b.actor(db, "A")
    db.commit()
    client.post("/v1/letters/l/signatures", json={"actor_id": a.id, "capacity": "MP"})
    r = client.patch(
        f"/v1/letters/l/signatures/{a.id}",
        json={"capacity": "Rt Hon MP", "status": "unverified", "signed_on": "2020-09-12", "position": 3},
    )
    assert r.status_code == 200, r.text
    assert r.json()["capacity"] == "Rt Hon MP" and r.json()["signed_on"] == "2020-09-12"
    change = db.scalars(
        select(ChangeRecord).where(ChangeRecord.entity == "signature", ChangeRecord.action == "update")
    ).one()
    assert (change.before or {})["capacity"] == "MP" and (change.after or {})["capacity"] == "Rt Hon MP"
    assert (change.before or {})["signed_on"] == "2020-09-09"

    client.delete(f"/v1/letters/l/signatures/{a.id}?on=2020-09-15")
    r = client.patch(f"/v1/letters/l/signatures/{a.id}", json={"signed_on": "2020-09-20"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.signed_on"
    r = client.patch(f"/v1/letters/l/signatures/{a.id}", json={"withdrawn_on": "2020-01-01"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.withdrawn_on"
    r = client.patch(f"/v1/letters/l/signatures/{a.id}", json={"status": None})
    assert r.status_code == 422
    assert client.patch("/v1/letters/l/signatures/999999", json={"capacity": "x"}).status_code == 404


def test_signature_writes_need_a_key(anon: TestClient, db: Session) -> None:
    letter = b.letter(db, "l")
    a = b.actor(db, "A")
    b.sign(db, letter, a)
    db.commit()
    assert anon.post("/v1/letters/l/signatures", json={"actor_id": a.id}).status_code == 401
    assert anon.patch(f"/v1/letters/l/signatures/{a.id}", json={"capacity": "x"}).status_code == 401
    assert anon.delete(f"/v1/letters/l/signatures/{a.id}").status_code == 401
    assert anon.get(f"/v1/letters/l/signatures/{a.id}").status_code == 200


def _scenario(db: Session) -> dict[str, int]:
    """A member who switched party between two letters, a peer, an NGO abroad."""
    commons, lords = b.body(db, "house-of-commons"), b.body(db, "house-of-lords")
    labour, conservative = b.party(db, "labour"), b.party(db, "conservative")
    first = b.letter(db, "first", published_on=date(2020, 9, 9))
    b.letter(db, "second", published_on=date(2021, 3, 1))
    switcher = b.actor(db, "Switcher MP", country="GB")
    b.membership(db, switcher, commons, labour, date(2019, 12, 12), date(2020, 12, 31))
    b.membership(db, switcher, commons, conservative, date(2021, 1, 1))
    peer = b.actor(db, "Lord Peer", country="GB")
    b.membership(db, peer, lords, None, date(2000, 1, 1))
    ngo = b.actor(db, "Ligue des droits de l'Homme", kind="organisation", country="FR", org_type="ngo")
    b.sign(db, first, switcher, capacity="MP")
    b.sign(db, first, peer, capacity="Lord")
    b.sign(db, first, ngo, status="unverified")
    second = db.scalar(select(Letter).where(Letter.slug == "second"))
    assert second is not None
    b.sign(db, second, switcher)
    db.commit()
    return {"switcher": switcher.id, "peer": peer.id, "ngo": ngo.id}


def test_signature_filters_on_the_signing_day(anon: TestClient, db: Session) -> None:
    ids = _scenario(db)

    def actors(slug: str, query: str) -> list[int]:
        r = anon.get(f"/v1/letters/{slug}/signatures?{query}")
        assert r.status_code == 200, r.text
        return [i["actor"]["id"] for i in r.json()["items"]]

    assert actors("first", "") == [ids["switcher"], ids["peer"], ids["ngo"]]
    assert actors("first", "party=labour") == [ids["switcher"]]
    assert actors("first", "party=conservative") == []
    assert actors("second", "party=conservative") == [ids["switcher"]]
    assert actors("second", "party=labour") == []
    assert actors("first", "body=house-of-commons") == [ids["switcher"]]
    assert actors("first", "body=house-of-lords") == [ids["peer"]]
    assert actors("first", "body=house-of-commons&party=labour") == [ids["switcher"]]
    assert actors("first", "body=house-of-lords&party=labour") == []
    assert actors("first", "kind=organisation") == [ids["ngo"]]
    assert actors("first", "country=fr") == [ids["ngo"]]
    assert actors("first", "org_type=ngo") == [ids["ngo"]]
    assert actors("first", "status=unverified") == [ids["ngo"]]
    assert anon.get("/v1/letters/first/signatures?kind=robot").status_code == 422


def test_signature_pages(anon: TestClient, db: Session) -> None:
    letter = b.letter(db, "big")
    made = [b.actor(db, f"Actor {i}").id for i in range(7)]
    for actor_id in made:
        db.add(Signature(letter_id=letter.id, actor_id=actor_id, signed_on=date(2020, 9, 9)))
    db.commit()
    seen: list[int] = []
    url = "/v1/letters/big/signatures?limit=3"
    while url:
        r = anon.get(url)
        seen += [i["actor"]["id"] for i in r.json()["items"]]
        url = r.headers["link"][1 : r.headers["link"].index(">")] if "link" in r.headers else ""
    assert seen == made


def test_csv_export(anon: TestClient, db: Session) -> None:
    ids = _scenario(db)
    r = anon.get("/v1/letters/first/signatures?format=csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="first-signatures.csv"'
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8"))))
    assert list(rows[0]) == EXPORT_COLUMNS
    by_id = {int(row["actor_id"]): row for row in rows}
    assert list(by_id) == [ids["switcher"], ids["peer"], ids["ngo"]]
    switcher = by_id[ids["switcher"]]
    assert (switcher["name"], switcher["kind"], switcher["country"]) == ("Switcher MP", "person", "GB")
    assert (switcher["body"], switcher["party"]) == ("house-of-commons", "labour")  # on 2020-09-09
    assert (switcher["capacity"], switcher["signed_on"], switcher["withdrawn_on"]) == ("MP", "2020-09-09", "")
    assert switcher["status"] == "confirmed" and switcher["org_type"] == ""
    assert by_id[ids["peer"]]["body"] == "house-of-lords" and by_id[ids["peer"]]["party"] == ""
    assert by_id[ids["ngo"]]["name"] == "Ligue des droits de l'Homme"
    assert by_id[ids["ngo"]]["org_type"] == "ngo" and by_id[ids["ngo"]]["body"] == ""

    second = list(csv.DictReader(io.StringIO(anon.get("/v1/letters/second/signatures?format=csv").text)))
    assert [(row["party"], row["signed_on"]) for row in second] == [("conservative", "2021-03-01")]

    # Accept: text/csv works too, and filters apply
    r = anon.get("/v1/letters/first/signatures?kind=person", headers={"Accept": "text/csv"})
    assert r.headers["content-type"].startswith("text/csv")
    assert [row["name"] for row in csv.DictReader(io.StringIO(r.text))] == ["Switcher MP", "Lord Peer"]
    assert anon.get("/v1/letters/nope/signatures?format=csv").status_code == 404


def test_export_streams_every_row_in_batches(anon: TestClient, db: Session) -> None:
    letter = b.letter(db, "many", published_on=date(2020, 9, 9))
    names = [f"Organisation {i:04d} – 組織" for i in range(2345)]
    actors = [
        Actor(kind="organisation", name=n, match_name=n.lower(), search_text=n.lower(), country="GB")
        for n in names
    ]
    db.add_all(actors)
    db.flush()
    db.add_all(Signature(letter_id=letter.id, actor_id=a.id, signed_on=date(2020, 9, 9)) for a in actors)
    db.flush()
    withdrawn = db.scalars(select(Signature).where(Signature.actor_id == actors[5].id)).one()
    withdrawn.withdrawn_on = date(2020, 10, 1)
    db.commit()

    r = anon.get("/v1/letters/many/signatures?format=csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8"))))
    assert [row["name"] for row in rows] == names  # all rows, once, in order, UTF-8 intact
    assert rows[5]["withdrawn_on"] == "2020-10-01"
    # Streamed, not buffered: the ETag is the registry's validator, known before the first row.
    assert r.headers["etag"] != etag_for(r.content)
    again = anon.get("/v1/letters/many/signatures?format=csv", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""

    r = anon.get("/v1/letters/many/signatures?format=ndjson&include_withdrawn=false")
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert r.headers["content-disposition"] == 'attachment; filename="many-signatures.ndjson"'
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert len(lines) == 2344 and all(line["withdrawn_on"] is None for line in lines)
    assert list(lines[0]) == EXPORT_COLUMNS
    assert lines[0]["actor_id"] == actors[0].id and lines[0]["signed_on"] == "2020-09-09"
    assert lines[-1]["name"] == names[-1]


def test_ndjson_export_values(anon: TestClient, db: Session) -> None:
    ids = _scenario(db)
    r = anon.get("/v1/letters/first/signatures?format=ndjson&party=labour")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert lines == [
        {
            "actor_id": ids["switcher"],
            "name": "Switcher MP",
            "kind": "person",
            "country": "GB",
            "org_type": None,
            "body": "house-of-commons",
            "party": "labour",
            "capacity": "MP",
            "affiliation": None,
            "signed_on": "2020-09-09",
            "withdrawn_on": None,
            "position": None,
            "status": "confirmed",
            "source": None,
        }
    ]


def test_future_signature_is_listed_but_not_yet_counted(anon: TestClient, db: Session) -> None:
    letter = b.letter(db, "l", published_on=date(2020, 9, 9))
    b.sign(db, letter, b.actor(db, "Later"), signed_on=date.today() + timedelta(days=3))
    db.commit()
    assert len(anon.get("/v1/letters/l/signatures").json()["items"]) == 1
    assert anon.get("/v1/letters/l").json()["recorded_signatory_count"] == 0


def test_concurrent_duplicate_signatures_are_one_409(migrated_database_url: str) -> None:
    """Two writers sign the same actor at once: one signature, and the other gets a 409 (on
    PostgreSQL the second insert waits on the unique index, then fails; on SQLite the second
    writer waits for the write lock, then sees the first signature)."""
    database = Database(create_engine_for(Settings(database_url=migrated_database_url)))
    try:
        with session_scope(database.write_sessions) as session:
            letter = b.letter(session, "race")
            who = b.actor(session, "Racer")
            letter_id, actor_id = letter.id, who.id
        first = database.write_sessions()
        service.add_signature(Writer(first, "first", "write"), "race", SignatureCreate(actor_id=actor_id))
        outcome: list[BaseException | None] = []

        def second() -> None:
            try:
                with session_scope(database.write_sessions) as session:
                    service.add_signature(
                        Writer(session, "second", "write"), "race", SignatureCreate(actor_id=actor_id)
                    )
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        # The second writer must be waiting on the first when it commits.
        checked_out = threading.Event()
        event.listen(database.engine.pool, "checkout", lambda *_: checked_out.set())

        def second_waits() -> bool:
            if migrated_database_url.startswith("sqlite"):
                return checked_out.is_set()  # its BEGIN IMMEDIATE, next, waits for the first's write lock
            with database.engine.connect() as conn:  # its insert waits on the first's unique key
                activity = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                return bool(conn.scalar(text(f"{activity} AND wait_event_type = 'Lock'")))

        thread = threading.Thread(target=second)
        thread.start()
        wait_for(second_waits, "the second writer to wait on the first", timeout=10)
        first.commit()
        first.close()
        thread.join(30)
        assert len(outcome) == 1 and isinstance(outcome[0], Conflict), outcome
        with database.read_sessions() as session:
            rows = session.scalars(select(Signature).where(Signature.letter_id == letter_id)).all()
            assert [s.actor_id for s in rows] == [actor_id]
    finally:
        database.dispose()


def test_export_batches_walk_every_row_once(db: Session, engine: Engine) -> None:
    """Small batches: the keyset walk neither repeats nor skips a row across batch ends."""
    letter = b.letter(db, "walk")
    made = [b.actor(db, f"W {i}") for i in range(7)]
    for who in reversed(made):  # signature ids in the opposite order of actor ids
        b.sign(db, letter, who)
    other = b.letter(db, "other")
    b.sign(db, other, made[0])
    db.commit()
    sessions = sessionmaker(engine)
    for batch in (1, 2, 3, 7, 1000):
        rows = list(service.export_signatures(sessions, letter.id, service.SignatureFilters(), batch=batch))
        assert [r.actor_id for r in rows] == [a.id for a in made], batch


def test_a_new_signature_takes_the_locks_writers_of_its_letter_share_last(
    client: TestClient, engine: Engine
) -> None:
    """The letter's pair rows, the day's rollup row and the letter's version are what every
    writer to the letter waits for until the writing transaction ends: they are the last writes
    of a signature, so that the wait is as short as it can be — on PostgreSQL sent together in
    one round trip (`app.db.engine.execute_together`), which the ORM's statement events do not
    see. After them comes only the one read that looks for milestones the letter passed
    (app/webhooks/outbox.py)."""
    client.post("/v1/letters", json={"slug": "queue", "title": "Queue", "published_on": "2024-03-01"})
    statements: list[str] = []

    def record(_conn: Connection, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(" ".join(statement.split()))

    def scalar(sql: str) -> int:
        with engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())

    version = scalar("SELECT version FROM letters WHERE slug = 'queue'")
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.post(
            "/v1/letters/queue/signatures", json={"actor": {"kind": "person", "name": "Ada"}}
        )
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 201, response.text
    inserted = next(i for i, sql in enumerate(statements) if sql.startswith("INSERT INTO signatures"))
    after = statements[inserted + 1 :]
    hot = ["INSERT INTO letter_pairs", "INSERT INTO letter_rollups", "UPDATE letters SET version"]
    if engine.dialect.name == "postgresql":
        assert not [sql for sql in after if any(h in sql for h in hot)], after  # (in one pipeline)
        assert after[-1].startswith("SELECT letters.id"), after
    else:
        *writes, last = after[-4:]
        assert [h in sql for h, sql in zip(hot, writes, strict=True)] == [True] * 3, after
        assert last.startswith("SELECT letters.id"), after
    letter = "(SELECT id FROM letters WHERE slug = 'queue')"
    assert scalar(f"SELECT version FROM letters WHERE id = {letter}") == version + 1
    assert scalar(f"SELECT common FROM letter_pairs WHERE letter_a = {letter} AND letter_b = letter_a") == 1
    assert scalar(f"SELECT sum(new) FROM letter_rollups WHERE letter_id = {letter}") == 1
