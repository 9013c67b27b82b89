"""POST /v1/letters/{slug}/signatures/import: parsing, matching, reports, atomicity."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app import rollups
from app.models import Actor, ChangeRecord, Identifier, Membership, Signature
from app.text import match_name, search_text
from tests import builders as b

# The real lists, as the project keeps them (with their sources and licences in SOURCES.md).
DATA = Path(__file__).parent.parent / "app" / "demo" / "data" / "sources"


def post_csv(client: TestClient, slug: str, text: str | bytes, **params: Any) -> Response:
    content = text.encode() if isinstance(text, str) else text
    return client.post(  # type: ignore[no-any-return]
        f"/v1/letters/{slug}/signatures/import",
        content=content,
        params=params,
        headers={"Content-Type": "text/csv"},
    )


def post_json(client: TestClient, slug: str, rows: Any, **params: Any) -> Response:
    return client.post(f"/v1/letters/{slug}/signatures/import", json=rows, params=params)  # type: ignore[no-any-return]


def counts(db: Session) -> tuple[int, int, int]:
    db.expire_all()
    return (
        db.scalar(select(func.count()).select_from(Actor)) or 0,
        db.scalar(select(func.count()).select_from(Signature)) or 0,
        db.scalar(select(func.count()).select_from(Identifier)) or 0,
    )


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_csv_import_creates_actors_and_signatures(client: TestClient, db: Session) -> None:
    letter = b.letter(db, "l1", published_on=date(2020, 9, 9))
    db.commit()
    r = post_csv(
        client,
        "l1",
        "name,country,org_type,capacity,wikidata\n"
        "Human Rights Watch,US,ngo,,Q184920\n"
        '"Amnesty International",gb,ngo,"Secretariat, London",\n',
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["dry_run"] is False
    assert report["summary"] == {
        "rows": 2,
        "created": 2,
        "matched": 0,
        "duplicate": 0,
        "ambiguous": 0,
        "error": 0,
    }
    assert [row["row"] for row in report["rows"]] == [1, 2]
    hrw_id = report["rows"][0]["actor"]["id"]
    assert report["rows"][0] == {
        "row": 1,
        "status": "created",
        "actor": {"id": hrw_id, "name": "Human Rights Watch"},
    }
    db.expire_all()
    hrw = db.get(Actor, hrw_id)
    assert hrw is not None and hrw.kind == "organisation" and hrw.country == "US" and hrw.org_type == "ngo"
    assert db.scalar(select(Identifier.value).where(Identifier.actor_id == hrw_id)) == "Q184920"
    sigs = db.scalars(select(Signature).where(Signature.letter_id == letter.id).order_by(Signature.id)).all()
    assert [s.signed_on for s in sigs] == [date(2020, 9, 9)] * 2
    assert sigs[1].capacity == "Secretariat, London"
    amnesty = db.get(Actor, sigs[1].actor_id)
    assert amnesty is not None and amnesty.country == "GB"
    changes = db.scalars(select(ChangeRecord).where(ChangeRecord.action == "import")).all()
    assert len(changes) == 1 and changes[0].entity_key == "l1"
    assert (changes[0].after or {})["summary"]["created"] == 2


def test_reimport_is_all_duplicate(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    text = "name\nHuman Rights Watch\nAmnesty International\n"
    assert post_csv(client, "l1", text).status_code == 200
    before = counts(db)
    r = post_csv(client, "l1", text)
    assert r.status_code == 200
    assert r.json()["summary"]["duplicate"] == 2 and r.json()["summary"]["created"] == 0
    assert all(row["actor"]["name"] for row in r.json()["rows"])
    assert counts(db) == before


def test_json_body_and_kind_parameter(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    r = post_json(
        client,
        "l1",
        [
            {"name": "Jane Doe", "position": 1},
            {"name": "ACME Union", "kind": "organisation", "org_type": "union"},
        ],
        kind="person",
    )
    assert r.status_code == 200, r.text
    ids = [row["actor"]["id"] for row in r.json()["rows"]]
    db.expire_all()
    assert [db.get(Actor, i).kind for i in ids] == ["person", "organisation"]  # type: ignore[union-attr]


def test_matching_by_identifier_exact_name_and_fuzzy(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    davey = b.actor(db, "Ed Davey", kind="person", identifiers={"ukparliament": "188"})
    tugendhat = b.actor(db, "Tom Tugendhat", kind="person", identifiers={"ukparliament": "4462"})
    amnesty = b.actor(db, "Amnesty International", kind="organisation")
    db.commit()
    r = post_csv(
        client,
        "l1",
        "name,kind,ukparliament\n"
        "The Rt Hon Sir Ed Davey MP,person,\n"
        "Thomas Tugendhat,person,4462\n"
        "Amnesty Internationl,organisation,\n"
        "Ed Davey,organisation,\n",
    )
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert rows[0] == {
        "row": 1,
        "status": "matched",
        "actor": {"id": davey.id, "name": "Ed Davey"},
        "method": "exact",
        "score": 1.0,
    }
    assert rows[1]["status"] == "matched" and rows[1]["actor"]["id"] == tugendhat.id
    assert rows[1]["method"] == "identifier"
    assert rows[2]["status"] == "matched" and rows[2]["actor"]["id"] == amnesty.id
    assert rows[2]["method"] == "fuzzy" and 0.92 <= rows[2]["score"] < 1
    # Kinds never match across: an organisation called "Ed Davey" is a new actor.
    assert rows[3]["status"] == "created" and rows[3]["actor"]["id"] not in (davey.id, amnesty.id)


def test_other_identifier_value_is_not_a_name_match(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    b.actor(db, "John Smith", kind="person", identifiers={"ukparliament": "1"})
    db.commit()
    r = post_csv(client, "l1", "name,ukparliament\nJohn Smith,2\n", kind="person")
    assert r.json()["rows"][0]["status"] == "created"


def test_two_john_smiths_are_ambiguous(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    one = b.actor(db, "John Smith", kind="person")
    two = b.actor(db, "Dr John Smith", kind="person")
    db.commit()
    before = counts(db)
    r = post_csv(client, "l1", "name\nJohn Smith\n", kind="person")
    assert r.status_code == 200
    row = r.json()["rows"][0]
    assert row["status"] == "ambiguous"
    assert sorted(c["id"] for c in row["candidates"]) == sorted([one.id, two.id])
    assert all(c["score"] == 1.0 and c["name"] for c in row["candidates"])
    assert r.json()["summary"]["ambiguous"] == 1
    assert counts(db)[:2] == before[:2]

    r = post_csv(client, "l1", "name\nJohn Smith\n", kind="person", on_ambiguous="create")
    assert r.json()["rows"][0]["status"] == "created"
    assert counts(db)[0] == before[0] + 1


def test_close_fuzzy_candidates_are_ambiguous(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    b.actor(db, "Uyghur Human Rights Project", kind="organisation")
    b.actor(db, "Uyghur Human Right Project", kind="organisation")
    db.commit()
    r = post_csv(client, "l1", "name\nUyghur Human Rights Projekt\n")
    row = r.json()["rows"][0]
    assert row["status"] == "ambiguous" and len(row["candidates"]) == 2
    assert all(0.9 <= c["score"] < 1 for c in row["candidates"])


def test_rows_match_each_other_only_exactly(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    r = post_csv(
        client,
        "l1",
        "name,wikidata\n"
        "Amnesty International,\n"
        "AMNESTY INTERNATIONAL,\n"  # same match_name -> duplicate
        "Amnesty Internationl,\n"  # fuzzy only -> a new actor (rows never match fuzzily)
        "World Uyghur Congress,Q1\n"
        "WUC,Q1\n",  # same identifier -> duplicate
    )
    assert r.status_code == 200, r.text
    statuses = [row["status"] for row in r.json()["rows"]]
    assert statuses == ["created", "duplicate", "created", "created", "duplicate"]
    rows = r.json()["rows"]
    assert rows[1]["actor"]["id"] == rows[0]["actor"]["id"] and "row 1" in rows[1]["warning"]
    assert rows[4]["actor"]["id"] == rows[3]["actor"]["id"]
    assert counts(db)[1] == 3


def test_hard_names_round_trip(client: TestClient, db: Session) -> None:
    letter = b.letter(db, "l1")
    db.commit()
    names = [
        "Fédération internationale pour les droits humains",
        "ئۇيغۇر",
        "世界维吾尔代表大会",
        'Ligue "des droits", de l\'Homme',
        "Robert'); DROP TABLE actors;--",
    ]
    r = post_csv(client, "l1", to_csv([{"name": n} for n in names]))
    assert r.status_code == 200, r.text
    assert [row["actor"]["name"] for row in r.json()["rows"]] == names
    db.expire_all()
    stored = db.scalars(
        select(Actor.name)
        .join(Signature, Signature.actor_id == Actor.id)
        .where(Signature.letter_id == letter.id)
    ).all()
    assert sorted(stored) == sorted(names)
    # The exact normalised name finds them again (accents folded).
    r = post_csv(
        client, "l1", "name\nFEDERATION INTERNATIONALE POUR LES DROITS HUMAINS\n世界维吾尔代表大会\n"
    )
    assert [row["status"] for row in r.json()["rows"]] == ["duplicate", "duplicate"]


def test_dry_run_writes_nothing(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    before = counts(db)
    r = post_csv(client, "l1", "name,wikidata\nNew Org,Q5\nOther Org,\n", dry_run="true")
    assert r.status_code == 200
    assert r.json()["dry_run"] is True and r.json()["summary"]["created"] == 2
    assert r.json()["rows"][0]["actor"] == {"id": None, "name": "New Org"}
    assert counts(db) == before
    assert (
        db.scalar(select(func.count()).select_from(ChangeRecord).where(ChangeRecord.action == "import")) == 0
    )


def test_error_rows_are_422_and_nothing_is_written(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    b.body(db, "house-of-commons")
    db.commit()
    before = counts(db)
    r = post_csv(
        client,
        "l1",
        "name,kind,signed_on,country,body,party\n"
        "Fine Org,,,,,\n"
        "Bad Date,,2020-13-01,,,\n"
        "Bad Kind,robot,,,,\n"
        ",,,,,\n"
        "Bad Country,,,XX,,\n"
        "Bad Body,person,,,nowhere,\n"
        "Bad Party,person,,,house-of-commons,whigs\n"
        "Too,many,,,,,,\n",
        keep_dates="true",
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == 422 and problem["dry_run"] is False
    assert problem["summary"]["error"] == 6 and problem["summary"]["rows"] == 7
    by_row = {row["row"]: row for row in problem["rows"]}
    assert by_row[1]["status"] == "created"
    assert by_row[2]["error"] == "signed_on: '2020-13-01' is not a date (YYYY-MM-DD)"
    assert by_row[3]["error"] == "kind: 'robot' is not person or organisation"
    assert by_row[4]["error"] == "country: 'XX' is not an ISO 3166-1 alpha-2 code"
    assert by_row[5]["error"] == "body: unknown body 'nowhere'"
    assert by_row[6]["error"] == "party: unknown party 'whigs'"
    assert "fields" in by_row[7]["error"]
    assert counts(db) == before


def test_blank_line_rows_and_name_required(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    r = post_csv(client, "l1", "name,capacity\nOne\n,Director\n")
    assert r.status_code == 422
    rows = r.json()["rows"]
    assert rows[0]["status"] == "created"  # missing trailing field = empty
    assert rows[1] == {"row": 2, "line": 3, "status": "error", "error": "name: required"}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"label,country\nHRW,US\n", "lacks a 'name' column"),
        (b"name\nLigue des droits de l\xe9homme\n", "not UTF-8: byte 0xe9 at byte offset 26 (line 2)"),
        (b"name\n\x00\x01\x02binary", "NUL byte"),
        (b"", "empty"),
    ],
)
def test_bad_bodies_are_422(client: TestClient, db: Session, body: bytes, needle: str) -> None:
    b.letter(db, "l1")
    db.commit()
    r = post_csv(client, "l1", body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert needle in r.json()["detail"]


def test_bom_is_accepted_and_unbalanced_quote_is_an_error_row(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    assert post_csv(client, "l1", "\ufeffname\nOne\n", dry_run="true").status_code == 200
    r = post_csv(client, "l1", 'name\nOne\n"Two\nThree\n')
    assert r.status_code == 422
    rows = r.json()["rows"]
    assert rows[0]["status"] == "created" and rows[1]["status"] == "error"
    assert "cannot be parsed" in rows[1]["error"]


@pytest.mark.parametrize(
    ("charset", "encode"),
    [
        ("windows-1252", lambda text: text.encode("cp1252")),  # a spreadsheet's "CSV"
        ("UTF-16", lambda text: text.encode("utf-16")),  # its "Unicode text", with a BOM
        ('"iso-8859-1"', lambda text: text.encode("latin-1")),
        ("utf-8", lambda text: text.encode()),
    ],
)
def test_the_declared_charset_is_read(
    client: TestClient, db: Session, charset: str, encode: Callable[[str], bytes]
) -> None:
    b.letter(db, "l1")
    db.commit()
    names = ["Ligue des droits de l'Homme", "Société Générale", "Brot für die Welt"]
    r = client.post(
        "/v1/letters/l1/signatures/import",
        content=encode("name\n" + "\n".join(names) + "\n"),
        headers={"Content-Type": f"text/csv; charset={charset}"},
    )
    assert r.status_code == 200, r.text
    db.expire_all()
    assert sorted(db.scalars(select(Actor.name)).all()) == sorted(names)


def test_an_unknown_or_wrong_charset_is_422(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    body = "name\nSociété\n".encode("cp1252")
    unknown = client.post(
        "/v1/letters/l1/signatures/import",
        content=body,
        headers={"Content-Type": "text/csv; charset=klingon"},
    )
    assert unknown.status_code == 422
    assert "unknown charset 'klingon'" in unknown.json()["detail"]
    assert unknown.json()["errors"][0]["field"] == "header.Content-Type"
    wrong = client.post(
        "/v1/letters/l1/signatures/import",
        content="name\nSociété\n".encode(),
        headers={"Content-Type": "text/csv; charset=us-ascii"},
    )
    assert wrong.status_code == 422
    assert "not us-ascii: byte 0xc3 at byte offset 9 (line 2)" in wrong.json()["detail"]
    assert counts(db)[0] == 0


def test_unsupported_media_type_and_unknown_letter(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    r = client.post(
        "/v1/letters/l1/signatures/import", content=b"name\nx\n", headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 415 and r.json()["status"] == 415
    assert post_csv(client, "nope", "name\nx\n").status_code == 404
    assert post_json(client, "l1", {"name": "x"}).status_code == 422


def test_import_needs_a_write_key(anon: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    assert post_csv(anon, "l1", "name\nx\n").status_code == 401


def test_withdrawn_signature_is_duplicate(client: TestClient, db: Session) -> None:
    letter = b.letter(db, "l1")
    a = b.actor(db, "Gone Org", kind="organisation")
    b.sign(db, letter, a, withdrawn_on=date(2020, 10, 1))
    db.commit()
    r = post_csv(client, "l1", "name\nGone Org\n")
    row = r.json()["rows"][0]
    assert row["status"] == "duplicate" and "withdrawn" in row["warning"]


def test_seats_new_members_and_warnings_for_matched(client: TestClient, db: Session) -> None:
    b.letter(db, "l1", published_on=date(2020, 9, 9))
    commons = b.body(db, "house-of-commons")
    labour = b.party(db, "labour")
    b.party(db, "conservative")
    sitting = b.actor(db, "Siobhain McDonagh", kind="person", identifiers={"ukparliament": "193"})
    b.membership(db, sitting, commons, labour, date(2019, 12, 12))
    db.commit()
    r = post_csv(
        client,
        "l1",
        "name,kind,body,party,ukparliament\n"
        "Siobhain McDonagh MP,person,house-of-commons,conservative,193\n"
        "New Member,person,house-of-commons,labour,9999\n",
    )
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert rows[0]["status"] == "matched" and "party" in rows[0]["warning"]
    assert "warning" not in rows[1]
    db.expire_all()
    seat = db.scalars(select(Membership).where(Membership.actor_id == rows[1]["actor"]["id"])).one()
    assert (seat.body_id, seat.party_id, seat.start_date, seat.end_date) == (
        commons.id,
        labour.id,
        date(2020, 9, 9),
        None,
    )


def test_letter_321_organisations(client: TestClient, db: Session) -> None:
    b.letter(db, "global-call", published_on=date(2020, 9, 9))
    b.actor(db, "Amnesty International", kind="organisation")
    db.commit()
    with (DATA / "letter-321-signatories.csv").open(encoding="utf-8") as f:
        source = list(csv.DictReader(f))
    rows = [{"name": r["organisation"], "acronym": r["acronym"], "source": r["evidence_url"]} for r in source]
    r = post_csv(client, "global-call", to_csv(rows))
    assert r.status_code == 200, r.text
    summary = r.json()["summary"]
    assert summary["rows"] == len(source)
    assert summary["matched"] == 1 and summary["created"] == len(source) - 1 and summary["error"] == 0


def test_letter_130_members_by_parliament_id(client: TestClient, db: Session) -> None:
    b.letter(db, "uk-mps", published_on=date(2020, 9, 9))
    commons = b.body(db, "house-of-commons")
    with (DATA / "uk-parliament-2020-09.csv").open(encoding="utf-8") as f:
        members = list(csv.DictReader(f))
    for m in members[:40]:
        who = b.actor(db, m["name"], kind="person", identifiers={"ukparliament": m["mnis_id"]})
        b.membership(db, who, commons, None, date.fromisoformat(m["membership_start"]))
    with (DATA / "letter-130-signatories.csv").open(encoding="utf-8") as f:
        source = list(csv.DictReader(f))
    known = {m["mnis_id"] for m in members[:40]}
    for s in source:  # the signatories among the members, as the registry knows them
        if s["mnis_id"] not in known:
            b.actor(db, s["name"], kind="person", identifiers={"ukparliament": s["mnis_id"]})
    db.commit()
    rows = [
        {"name": s["name"], "kind": "person", "ukparliament": s["mnis_id"], "capacity": s["role"]}
        for s in source
    ]
    r = post_csv(client, "uk-mps", to_csv(rows))
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["matched"] == len(source) and r.json()["summary"]["created"] == 0


def test_idempotent_retry_replays_and_writes_once(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    headers = {"Content-Type": "text/csv", "Idempotency-Key": "k-1"}
    url = "/v1/letters/l1/signatures/import"
    first = client.post(url, content=b"name\nOnce Only\n", headers=headers)
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    after_first = counts(db)
    again = client.post(url, content=b"name\nOnce Only\n", headers=headers)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json() and again.json()["summary"]["created"] == 1
    assert counts(db) == after_first
    other = client.post(url, content=b"name\nSomething Else\n", headers=headers)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    assert counts(db) == after_first
    fresh = client.post(url, content=b"name\nOnce Only\n", headers={**headers, "Idempotency-Key": "k-2"})
    assert fresh.json()["summary"]["duplicate"] == 1


def test_json_rows_with_bad_values(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    r = post_json(client, "l1", [{"name": "ok"}, "not an object", {"name": ["x"]}])
    assert r.status_code == 422
    assert [row["status"] for row in r.json()["rows"]] == ["created", "error", "error"]
    r = client.post(
        "/v1/letters/l1/signatures/import", content=b"[{", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422 and "not JSON" in r.json()["detail"]
    assert json.loads(r.text)["status"] == 422


def test_signatures_export_reads_back(client: TestClient, db: Session) -> None:
    """What `GET …/signatures?format=csv` writes, the import reads: into another letter every row
    matches its actor (even two namesakes, through actor_id), into the same letter all duplicate."""
    source = b.letter(db, "source", published_on=date(2020, 9, 9))
    b.letter(db, "copy", published_on=date(2020, 9, 9))
    commons = b.body(db, "house-of-commons")
    labour = b.party(db, "labour")
    one = b.actor(db, "John Smith", kind="person")
    two = b.actor(db, "John Smith", kind="person")
    b.membership(db, one, commons, labour, date(2019, 12, 12))
    org = b.actor(db, "Ligue des droits, de l'Homme", kind="organisation", country="FR", org_type="ngo")
    b.sign(db, source, one, capacity="MP")
    b.sign(db, source, two, date(2020, 9, 10), withdrawn_on=date(2020, 10, 1))
    b.sign(db, source, org)
    db.commit()
    exported = client.get("/v1/letters/source/signatures", params={"format": "csv"})
    assert exported.status_code == 200, exported.text
    r = post_csv(client, "copy", exported.content, keep_dates="true")
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["matched"] == 3, r.json()
    assert sorted(row["actor"]["id"] for row in r.json()["rows"]) == sorted([one.id, two.id, org.id])
    assert "warning" not in r.json()["rows"][0] or "party" not in r.json()["rows"][0]["warning"]
    db.expire_all()
    copied = {
        s.actor_id: (s.signed_on, s.withdrawn_on, s.capacity)
        for s in db.scalars(select(Signature).join(Signature.letter).where(Signature.letter_id != source.id))
    }
    assert copied[two.id] == (date(2020, 9, 10), date(2020, 10, 1), None)
    assert copied[one.id][2] == "MP"
    again = post_csv(client, "source", exported.content)
    assert again.json()["summary"]["duplicate"] == 3


def test_all_members_of_parliament_then_letter_130(client: TestClient, db: Session) -> None:
    """The whole 2020 Parliament (1,454 members) in the registry; letter 130's list matches by
    parliament id, and by name alone too."""
    b.letter(db, "uk-mps", published_on=date(2020, 9, 9))
    with (DATA / "uk-parliament-2020-09.csv").open(encoding="utf-8") as f:
        members = list(csv.DictReader(f))
    db.add_all(
        Actor(
            kind="person",
            name=m["name"],
            country="GB",
            match_name=match_name(m["name"]),
            search_text=m["name"].lower(),
            identifiers=[Identifier(scheme="ukparliament", value=m["mnis_id"])],
        )
        for m in members
    )
    db.commit()
    with (DATA / "letter-130-signatories.csv").open(encoding="utf-8") as f:
        source = list(csv.DictReader(f))
    by_id = [{"name": s["name"], "ukparliament": s["mnis_id"]} for s in source]
    r = post_csv(client, "uk-mps", to_csv(by_id), kind="person", dry_run="true")
    assert r.json()["summary"]["matched"] == len(source)
    by_name = [{"name": s["name"]} for s in source]
    r = post_csv(client, "uk-mps", to_csv(by_name), kind="person", dry_run="true")
    summary = r.json()["summary"]
    # "Sir Edward (Ed) Davey" is "Ed Davey" in the members' list: fuzzy cannot tell, it is new.
    assert summary["matched"] + summary["created"] + summary["ambiguous"] == len(source)
    assert summary["matched"] >= len(source) - 2


def test_cli_import_signatures(
    migrated_database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from app.cli import cli
    from app.config import Settings, get_settings
    from app.db.engine import create_engine_for

    engine = create_engine_for(Settings(database_url=migrated_database_url))
    try:
        with Session(engine) as s:
            b.letter(s, "global-call", published_on=date(2020, 9, 9))
            s.commit()
        monkeypatch.setenv("DATABASE_URL", migrated_database_url)
        get_settings.cache_clear()
        runner = CliRunner()
        file = str(DATA / "letter-321-signatories.csv")
        args = ["import-signatures", "global-call", file, "--column", "organisation=name"]
        dry = runner.invoke(cli, [*args, "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "created: 12" in dry.output and "(dry run)" in dry.output
        report = tmp_path / "report.json"
        done = runner.invoke(cli, [*args, "--report", str(report)])
        assert done.exit_code == 0 and "created: 12" in done.output
        assert json.loads(report.read_text(encoding="utf-8"))["summary"]["created"] == 12
        assert "duplicate: 12" in runner.invoke(cli, args).output
        bad = tmp_path / "bad.csv"
        bad.write_text("name,signed_on\nNew,someday\n", encoding="utf-8")
        failed = runner.invoke(cli, ["import-signatures", "global-call", str(bad), "--keep-dates"])
        assert failed.exit_code == 1 and "signed_on: 'someday' is not a date" in failed.output
        with Session(engine) as s:
            assert s.scalar(select(func.count()).select_from(Signature)) == 12
    finally:
        get_settings.cache_clear()
        engine.dispose()


def test_parallel_imports_of_one_letter_write_each_actor_once(migrated_database_url: str) -> None:
    """Four imports of the same list at once, each in its own transaction: the letter lock
    serialises them, so one creates and the others find every row a duplicate."""
    from concurrent.futures import ThreadPoolExecutor

    from app.config import Settings
    from app.db.database import Database, session_scope
    from app.db.engine import create_engine_for
    from app.imports import service
    from app.imports.parsing import read_csv

    database = Database(create_engine_for(Settings(database_url=migrated_database_url)))
    try:
        with session_scope(database.write_sessions) as s:
            b.letter(s, "l1")
        data = to_csv(
            [{"name": f"Organisation {i}", "wikidata": f"Q{i}" if i % 2 else ""} for i in range(300)]
        )

        def one() -> dict[str, Any]:
            with session_scope(database.write_sessions) as s:
                _h, rows = read_csv(data.encode())
                return service.import_signatures(s, "t", "l1", rows, service.ImportOptions())

        with ThreadPoolExecutor(4) as pool:
            reports = list(pool.map(lambda _i: one(), range(4)))
        created = sorted(r["summary"]["created"] for r in reports)
        assert created == [0, 0, 0, 300]
        assert sorted(r["summary"]["duplicate"] for r in reports) == [0, 300, 300, 300]
        with Session(database.engine) as s:
            assert s.scalar(select(func.count()).select_from(Actor)) == 300
            assert s.scalar(select(func.count()).select_from(Signature)) == 300
    finally:
        database.dispose()


def test_header_oddities(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    r = post_csv(client, "l1", "Name,,Country,\nSome Org,x,gb,\n", dry_run="true")  # blank columns ignored
    assert r.status_code == 200 and r.json()["summary"]["created"] == 1
    r = post_csv(client, "l1", "name,country,name\nA,GB,B\n")
    assert r.status_code == 422 and "repeats the column(s) name" in r.json()["detail"]
    r = post_csv(client, "l1", "label\nHRW\n")
    assert "lacks a 'name' column" in r.json()["detail"]


WORDS = ["Heron", "Lindqvist", "Okafor", "Brandt", "Moreau", "Tanaka", "Kowalski", "Haddad"]


def test_large_import_gives_each_row_its_documented_outcome(client: TestClient, db: Session) -> None:
    """12,000 rows — more than one chunk, so on PostgreSQL a thread writes while the next chunk
    is matched — against a registry of 3,000 actors: every row gets the outcome the rules give
    it one by one (exact name, identifier, fuzzy, ambiguous, repeated in the file, already
    signed, a seat), the report says so, the database holds exactly that, and the rollups agree
    with a rebuild."""
    letter = b.letter(db, "big", published_on=date(2021, 5, 4))
    commons = b.body(db, "house-of-commons")
    labour = b.party(db, "labour")
    existing = [
        Actor(
            kind="organisation",
            name=f"Registry Organisation {i:04d} {WORDS[i % 8]}",
            match_name=match_name(f"Registry Organisation {i:04d} {WORDS[i % 8]}"),
            search_text="",
        )
        for i in range(3000)
    ]
    db.add_all(existing)
    twins = [b.actor(db, "Twin Trust", kind="organisation") for _ in range(2)]
    known = b.actor(db, "Known By Wikidata", kind="organisation", identifiers={"wikidata": "Q4242"})
    signed = existing[7]
    b.sign(db, letter, signed, date(2021, 5, 1))
    db.commit()
    before = counts(db)

    rows: list[dict[str, str]] = []
    expected: list[tuple[str, int | None]] = []  # (status, actor id for matched/duplicate of an existing)
    for n in range(1, 12_001):
        if n % 10 == 1 and n != 71:  # an existing actor, named exactly (case, "The")
            who = existing[n // 10]
            rows.append(
                {"name": f"The {who.name.upper()}", "kind": "", "body": "", "party": "", "wikidata": ""}
            )
            expected.append(("matched", who.id))
        elif n % 10 == 2:  # another, misspelt: one letter of the last word
            who = existing[1500 + n // 10]
            last = WORDS[(1500 + n // 10) % 8]
            typo = who.name.replace(last, last[:-1] + ("x" if last[-1] != "x" else "y"))
            rows.append({"name": typo, "kind": "", "body": "", "party": "", "wikidata": ""})
            expected.append(("matched", who.id))
        elif n == 3:
            rows.append({"name": "Twin Trust", "kind": "", "body": "", "party": "", "wikidata": ""})
            expected.append(("ambiguous", None))
        elif n == 5:
            rows.append(
                {"name": "Another Name Entirely", "kind": "", "body": "", "party": "", "wikidata": "Q4242"}
            )
            expected.append(("matched", known.id))
        elif n == 71:  # the actor that already signed
            rows.append({"name": signed.name, "kind": "", "body": "", "party": "", "wikidata": ""})
            expected.append(("duplicate", signed.id))
        elif n % 1000 == 9:  # a new member with a seat
            rows.append(
                {
                    "name": f"New Member {n}",
                    "kind": "person",
                    "body": "house-of-commons",
                    "party": "labour",
                    "wikidata": "",
                }
            )
            expected.append(("created", None))
        elif n % 1000 == 504:  # the new name of row n - 500, again
            rows.append(
                {
                    "name": f"Newcomer {n - 500:05d} Association",
                    "kind": "",
                    "body": "",
                    "party": "",
                    "wikidata": "",
                }
            )
            expected.append(("duplicate", None))
        else:
            rows.append(
                {"name": f"Newcomer {n:05d} Association", "kind": "", "body": "", "party": "", "wikidata": ""}
            )
            expected.append(("created", None))
    text = to_csv(rows)

    dry = post_csv(client, "big", text, dry_run="true")
    assert dry.status_code == 200, dry.text[:500]
    assert counts(db) == before
    interval = sys.getswitchinterval()
    r = post_csv(client, "big", text)
    assert r.status_code == 200, r.text[:500]
    assert sys.getswitchinterval() == interval  # (quicker while a thread writes, on PostgreSQL)
    report = r.json()["rows"]
    assert [row["row"] for row in report] == list(range(1, 12_001))
    assert [row["status"] for row in report] == [status for status, _ in expected]
    assert [row["status"] for row in dry.json()["rows"]] == [status for status, _ in expected]
    for row, (_status, actor_id) in zip(report, expected, strict=True):
        if actor_id is not None:
            assert row["actor"]["id"] == actor_id, row
    created = {
        row["actor"]["id"]: rows[row["row"] - 1]["name"] for row in report if row["status"] == "created"
    }
    assert all(row["actor"]["id"] is None for row in dry.json()["rows"] if row["status"] == "created")
    for row in report:  # a row naming a new actor again points at the row that made it
        if row["status"] == "duplicate" and "same actor as row" in row.get("warning", ""):
            first = int(row["warning"].rsplit(" ", 1)[1])
            assert report[first - 1]["actor"]["id"] == row["actor"]["id"]
    summary = r.json()["summary"]
    assert summary["created"] == len(created) and summary["ambiguous"] == 1 and summary["error"] == 0

    db.expire_all()
    actors, signatures, _identifiers = counts(db)
    assert actors == before[0] + len(created)
    assert signatures == before[1] + summary["created"] + summary["matched"]
    assert dict(db.execute(select(Actor.id, Actor.name).where(Actor.id.in_(list(created)))).all()) == created
    signers = set(db.scalars(select(Signature.actor_id).where(Signature.letter_id == letter.id)))
    assert signers == {row["actor"]["id"] for row in report if row["status"] in ("created", "matched")} | {
        signed.id
    }
    seats = db.execute(select(Membership.actor_id, Membership.body_id, Membership.party_id)).all()
    members = {row["actor"]["id"] for row, (source) in zip(report, rows, strict=True) if source["body"]}
    assert {s.actor_id for s in seats} == members and {(s.body_id, s.party_id) for s in seats} == {
        (commons.id, labour.id)
    }
    assert twins[0].id not in signers and twins[1].id not in signers
    kept = rollups.snapshot(db)
    rollups.rebuild(db)
    assert rollups.snapshot(db) == kept


def test_rollups_of_new_and_existing_signers_agree_with_a_rebuild(client: TestClient, db: Session) -> None:
    """An import counts its new actors' signatures in the rollups itself (kind, country, org
    type, the seat it records, the signing and withdrawal days) and reads the existing actors'
    back: both agree with a rebuild from the signatures, combination by combination."""
    letter = b.letter(db, "roll", published_on=date(2021, 5, 4))
    b.body(db, "house-of-commons")
    labour = b.party(db, "labour")
    lords = b.body(db, "house-of-lords")
    peer = b.actor(db, "Baroness Sitting Peer", kind="person", country="GB")
    b.membership(db, peer, lords, labour, date(2010, 1, 1))
    b.actor(db, "Existing Charity", kind="organisation", country="FR", org_type="ngo")
    other = b.actor(db, "Already Signed Union", kind="organisation", org_type="union")
    b.sign(db, letter, other, date(2021, 5, 1))
    db.commit()
    r = post_csv(
        client,
        "roll",
        "name,kind,country,org_type,body,party,signed_on,withdrawn_on\n"
        "Brand New Charity,organisation,GB,ngo,,,2021-05-01,\n"
        "Second New Charity,organisation,gb,ngo,,,2021-05-01,2021-06-01\n"
        "Third New Charity,organisation,GB,ngo,,,2021-05-01,2021-06-01\n"
        "Stateless Collective,organisation,,,,,,\n"
        "Fresh Member,person,GB,,house-of-commons,labour,2021-05-02,\n"
        "Unaligned Member,person,,,house-of-commons,,2021-05-02,2021-05-03\n"
        "Party Only Person,person,GB,,,labour,,\n"
        "Sitting Peer,person,,,house-of-lords,labour,2021-05-02,2021-05-09\n"
        "Existing Charity,organisation,,,,,2021-05-01,\n"
        "Brand New Charity,organisation,GB,ngo,,,2021-05-03,\n",
        keep_dates="true",
    )
    assert r.status_code == 200, r.text
    assert r.json()["summary"] == {
        "rows": 10,
        "created": 7,
        "matched": 2,
        "duplicate": 1,
        "ambiguous": 0,
        "error": 0,
    }
    db.expire_all()
    kept = rollups.snapshot(db)
    assert sum(row[-2] for row in kept if row[0] == letter.id) == 10  # 9 written, 1 before
    assert sum(row[-1] for row in kept if row[0] == letter.id) == 4
    rollups.rebuild(db)
    assert rollups.snapshot(db) == kept


def test_new_actors_get_the_normalised_forms_of_their_names(client: TestClient, db: Session) -> None:
    """A new actor's match_name and search_text are what app.text makes of its name and sort
    name (the import folds each name once for both)."""
    b.letter(db, "forms", published_on=date(2021, 5, 4))
    db.commit()
    given = [
        ("The Rt Hon Zoë Ñandú-Smith MP", "Ñandú-Smith, Zoë"),
        ("LIGUE DES DROITS DE L’HOMME (LDH)", ""),
        ("Dr Who", "Who, Dr"),
    ]
    r = post_csv(client, "forms", to_csv([{"name": n, "sort_name": s, "kind": "person"} for n, s in given]))
    assert r.status_code == 200, r.text
    ids = [row["actor"]["id"] for row in r.json()["rows"]]
    db.expire_all()
    made = {a.id: (a.match_name, a.search_text) for a in db.scalars(select(Actor).where(Actor.id.in_(ids)))}
    assert [made[i] for i in ids] == [(match_name(n), search_text(n, s or None)) for n, s in given]


def test_a_failed_write_leaves_nothing(client: TestClient, db: Session, backend: str) -> None:
    """A write the database refuses late — here a trigger, in the third chunk of a 12,000-row
    import (on PostgreSQL, in the thread that writes) — fails the whole import with the app's
    conflict answer: nothing of it stays, and the next import goes through."""
    b.letter(db, "l1")
    db.commit()
    before = counts(db)
    if backend == "postgresql":
        db.execute(
            text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = 'unique_violation'; END $$"
            )
        )
        db.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON actors FOR EACH ROW "
                "WHEN (NEW.name = 'Refused Org') EXECUTE FUNCTION refuse()"
            )
        )
    else:
        db.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON actors FOR EACH ROW "
                "WHEN NEW.name = 'Refused Org' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    db.commit()
    names = [f"Organisation {i:05d}" for i in range(12_000)]
    names[11_000] = "Refused Org"
    interval = sys.getswitchinterval()
    r = post_csv(client, "l1", "name\n" + "\n".join(names) + "\n")
    assert r.status_code == 409, r.text[:300]  # as the app answers any refused write
    assert sys.getswitchinterval() == interval
    assert counts(db) == before
    assert (
        db.scalar(select(func.count()).select_from(ChangeRecord).where(ChangeRecord.action == "import")) == 0
    )
    r = post_csv(client, "l1", "name\nOrganisation 1\nOrganisation 2\n")
    assert r.status_code == 200 and r.json()["summary"]["created"] == 2


def test_position_and_scheme_beyond_the_columns_are_row_errors(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    r = post_json(
        client, "l1", [{"name": "A\u0000B"}, {"name": "Fine", "capacity": "x\u0000"}, {"name": "Ok"}]
    )
    assert r.status_code == 422
    assert [row.get("error") for row in r.json()["rows"]] == [
        "name: holds a NUL character",
        "capacity: holds a NUL character",
        None,
    ]
    r = post_csv(client, "l1", f"name,position,identifiers\nA,2147483648,\nB,1,{'x' * 51}:1\n")
    assert r.status_code == 422
    rows = r.json()["rows"]
    assert rows[0]["error"] == "position: larger than 2147483647"
    assert "longer than 50 characters" in rows[1]["error"]


def test_flagged_rows_only(client: TestClient, db: Session) -> None:
    """`?rows=flagged`: the report leaves out the plain created and matched rows; the summary and
    what is written are the same as with every row listed."""
    b.letter(db, "l1")
    b.actor(db, "Human Rights Watch", kind="organisation")
    twins = [b.actor(db, "Twin Trust", kind="organisation") for _ in range(2)]
    db.commit()
    text_ = "name\nHuman Rights Watch\nNew Org\nTwin Trust\nNew Org\nAnother\n"
    full = post_csv(client, "l1", text_, dry_run="true")
    flagged = post_csv(client, "l1", text_, rows="flagged")
    assert flagged.status_code == 200, flagged.text
    assert flagged.json()["summary"] == full.json()["summary"]
    assert [(r["row"], r["status"]) for r in flagged.json()["rows"]] == [(3, "ambiguous"), (4, "duplicate")]
    assert sorted(c["id"] for c in flagged.json()["rows"][0]["candidates"]) == sorted(t.id for t in twins)
    assert counts(db)[1] == 3  # HRW, New Org, Another
    bad = post_csv(client, "l1", "name,signed_on\nFine\nBad,someday\n", rows="flagged", keep_dates="true")
    assert bad.status_code == 422 and [r["row"] for r in bad.json()["rows"]] == [2]
    assert post_csv(client, "l1", "name\nX\n", rows="some").status_code == 422


def test_the_collector_is_held_off_until_the_last_import_ends() -> None:
    """Two imports overlapping: the collector stays off until both have ended, then runs again."""
    import gc

    from app.imports import collector

    assert gc.isenabled()
    first = collector.held_off()
    first.__enter__()
    with collector.held_off():
        assert not gc.isenabled()
    assert not gc.isenabled()  # the first import still runs
    first.__exit__(None, None, None)
    assert gc.isenabled()


def test_many_matched_actors_keep_the_pairs_and_rollups_of_a_recomputation(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import matching many actors (`HASH_JOIN_AFTER`, lowered here to every import) reads
    their other signatures back with hash joins on PostgreSQL: the pair counts and rollups it
    keeps are still those a recomputation from the signatures gives, withdrawn signatures of
    the other letters left out of the pairs, the letter's earlier signers counted once."""
    from app import pairs
    from app.imports import service

    monkeypatch.setattr(service, "HASH_JOIN_AFTER", 1)
    first, second = b.letter(db, "first"), b.letter(db, "second")
    target = b.letter(db, "target", published_on=date(2021, 5, 4))
    known = [b.actor(db, f"Known Group {n}", kind="organisation", country="GB") for n in range(12)]
    for n, who in enumerate(known):
        if n % 2 == 0:
            b.sign(db, first, who)
        if n % 3 == 0:
            b.sign(db, second, who, withdrawn_on=date(2020, 10, 1) if n % 4 == 0 else None)
    b.sign(db, target, known[0])  # signed before the import: a duplicate row
    db.commit()
    rows = [f"Known Group {n},organisation" for n in range(12)] + [
        f"New Group {n},organisation" for n in range(5)
    ]
    r = post_csv(client, "target", "name,kind\n" + "\n".join(rows) + "\n")
    assert r.status_code == 200, r.text
    assert r.json()["summary"] == {
        "rows": 17,
        "created": 5,
        "matched": 11,
        "duplicate": 1,
        "ambiguous": 0,
        "error": 0,
    }
    db.expire_all()
    kept = pairs.snapshot(db)
    assert kept == pairs.recomputed(db)
    assert (target.id, target.id, 17) in kept  # 11 matched, 5 new, 1 before
    # first: known 0, 2, …, 10 (6); second, still counting: known 3, 6 and 9 (0 withdrawn)
    assert (first.id, target.id, 6) in kept and (second.id, target.id, 3) in kept
    kept_rollups = rollups.snapshot(db)
    rollups.rebuild(db)
    assert rollups.snapshot(db) == kept_rollups


def test_a_written_import_reports_the_possible_matches_of_its_dry_run(
    client: TestClient, db: Session
) -> None:
    """The close matches below the threshold are searched in what the matching read of the
    registry (before the import's writes): a written import lists the same possible matches,
    row by row, as its dry run, and none of its own new actors."""
    b.letter(db, "l1")
    hrw = b.actor(db, "Human Rights Watch", kind="organisation")
    b.actor(db, "Amnesty International", kind="organisation")
    db.commit()
    text_ = (
        "name\nHuman Rights Watch (HRW)\nAmnesty Intl\nHuman Rights Watch HRW\n"
        "Human Rights Watchers Club\nSomething Else Entirely\n"
    )

    def possible(report: dict[str, Any]) -> list[tuple[str, list[int]]]:
        return [(r["status"], [c["id"] for c in r.get("possible_matches", [])]) for r in report["rows"]]

    dry = post_csv(client, "l1", text_, dry_run="true")
    written = post_csv(client, "l1", text_)
    assert dry.status_code == written.status_code == 200, written.text
    assert possible(written.json()) == possible(dry.json())
    assert hrw.id in possible(written.json())[0][1]
    new_ids = {r["actor"]["id"] for r in written.json()["rows"] if r["status"] == "created"}
    assert not new_ids & {i for _s, ids in possible(written.json()) for i in ids}
