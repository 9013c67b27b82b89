"""Counts of a letter: totals as of a day, breakdowns with dated memberships, share of body."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import builders as b

D = date


def _entries(doc: dict[str, Any], name: str) -> list[tuple[Any, ...]]:
    return [(e["key"], e["label"], e["count"]) for e in doc[f"by_{name}"]]


def test_party_and_body_on_the_day_of_each_signature(anon: TestClient, db: Session) -> None:
    commons = b.body(db, "house-of-commons", "House of Commons")
    lords = b.body(db, "house-of-lords", "House of Lords")
    lab = b.party(db, "labour", "Labour Party")
    con = b.party(db, "conservative", "Conservative")
    letter = b.letter(db, "mps", published_on=D(2020, 9, 9), claimed=130)

    # Switched party ON the signing day: the old seat ends the day before, the new starts that day.
    switcher = b.actor(db, "Switcher", country="GB")
    b.membership(db, switcher, commons, con, D(2019, 12, 12), D(2020, 9, 8))
    b.membership(db, switcher, commons, lab, D(2020, 9, 9))
    b.sign(db, letter, switcher, D(2020, 9, 9))
    # Switched the day AFTER signing: counted under the old party.
    later = b.actor(db, "Later", country="GB")
    b.membership(db, later, commons, con, D(2019, 12, 12), D(2020, 9, 9))
    b.membership(db, later, commons, lab, D(2020, 9, 10))
    b.sign(db, letter, later, D(2020, 9, 9))
    # Left the Commons before signing: no body, no party.
    left = b.actor(db, "Left", country="GB")
    b.membership(db, left, commons, lab, D(2015, 5, 7), D(2019, 11, 6))
    b.sign(db, letter, left, D(2020, 9, 9))
    # No seat at all.
    nobody = b.actor(db, "Nobody", country="FR")
    b.sign(db, letter, nobody, D(2020, 9, 10))
    # A crossbench peer: body, but no party.
    peer = b.actor(db, "Peer", country="GB")
    b.membership(db, peer, lords, None, D(2010, 1, 1))
    b.sign(db, letter, peer, D(2020, 9, 9))
    # Ended ON the signing day: still valid that day.
    last_day = b.actor(db, "Last Day")
    b.membership(db, last_day, lords, con, D(2001, 1, 1), D(2020, 9, 9))
    b.sign(db, letter, last_day, D(2020, 9, 9))

    r = anon.get("/v1/letters/mps/counts", params={"as_of": "2020-12-31"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["letter"] == "mps" and doc["as_of"] == "2020-12-31"
    assert doc["claimed"] == 130 and doc["recorded"] == 6 and doc["withdrawn"] == 0
    assert _entries(doc, "party") == [
        (None, "Unknown", 3),
        ("conservative", "Conservative", 2),
        ("labour", "Labour Party", 1),
    ]
    assert [(e["key"], e["count"]) for e in doc["by_body"]] == [
        ("house-of-commons", 2),
        ("house-of-lords", 2),
        (None, 2),
    ]
    assert _entries(doc, "country") == [
        ("GB", "United Kingdom", 4),
        ("FR", "France", 1),
        (None, "Unknown", 1),
    ]
    assert _entries(doc, "kind") == [("person", "Person", 6)]
    assert _entries(doc, "org_type") == [(None, "Unknown", 6)]
    for name in ("kind", "body", "party", "country", "org_type"):
        assert sum(e["count"] for e in doc[f"by_{name}"]) == doc["recorded"]


def test_overlapping_memberships_count_each_signature_once(anon: TestClient, db: Session) -> None:
    commons = b.body(db, "commons")
    euro = b.body(db, "europarl")
    p1, p2 = b.party(db, "p1"), b.party(db, "p2")
    letter = b.letter(db, "dual")
    both = b.actor(db, "Dual Mandate")
    b.membership(db, both, commons, p1, D(2010, 1, 1))
    b.membership(db, both, euro, p2, D(2014, 7, 1))  # the later start wins
    b.sign(db, letter, both)
    doc = anon.get("/v1/letters/dual/counts").json()
    assert [(e["key"], e["count"]) for e in doc["by_body"]] == [("europarl", 1)]
    assert [(e["key"], e["count"]) for e in doc["by_party"]] == [("p2", 1)]


def test_as_of_and_withdrawals(anon: TestClient, db: Session) -> None:
    letter = b.letter(db, "w", published_on=D(2020, 9, 9))
    people = [b.actor(db, f"A{i}") for i in range(5)]
    b.sign(db, letter, people[0], D(2020, 9, 9))  # stays
    b.sign(db, letter, people[1], D(2020, 9, 9), withdrawn_on=D(2020, 9, 10))  # before as_of
    b.sign(db, letter, people[2], D(2020, 9, 9), withdrawn_on=D(2020, 9, 12))  # ON as_of
    b.sign(db, letter, people[3], D(2020, 9, 9), withdrawn_on=D(2020, 9, 13))  # after as_of
    b.sign(db, letter, people[4], D(2020, 9, 13))  # signed after as_of

    def at(day: str) -> tuple[int, int]:
        doc = anon.get("/v1/letters/w/counts", params={"as_of": day}).json()
        assert sum(e["count"] for e in doc["by_kind"]) == doc["recorded"]
        return doc["recorded"], doc["withdrawn"]

    assert at("2020-09-08") == (0, 0)
    assert at("2020-09-09") == (4, 0)
    assert at("2020-09-10") == (3, 1)
    assert at("2020-09-12") == (2, 2)
    assert at("2020-09-13") == (2, 3)
    doc = anon.get("/v1/letters/w/counts").json()
    assert doc["as_of"] is None and (doc["recorded"], doc["withdrawn"]) == (2, 3)


def test_future_signature_is_not_counted_by_default(anon: TestClient, db: Session) -> None:
    letter = b.letter(db, "future", published_on=None)
    b.sign(db, letter, b.actor(db, "Soon"), date.today() + timedelta(days=3))
    b.sign(db, letter, b.actor(db, "Now"), date.today())
    assert anon.get("/v1/letters/future/counts").json()["recorded"] == 1


def test_empty_letter(anon: TestClient, db: Session) -> None:
    b.letter(db, "empty", claimed=None)
    doc = anon.get("/v1/letters/empty/counts").json()
    assert doc["recorded"] == 0 and doc["withdrawn"] == 0 and doc["claimed"] is None
    for name in ("kind", "body", "party", "country", "org_type"):
        assert doc[f"by_{name}"] == []


def test_organisations_by_org_type_and_country_sorting(anon: TestClient, db: Session) -> None:
    letter = b.letter(db, "ngos")
    rows = [("ngo", "DE"), ("ngo", "DE"), ("union", "AR"), ("faith", None), (None, "BE"), ("ngo", "AR")]
    for i, (org_type, country) in enumerate(rows):
        b.sign(db, letter, b.actor(db, f"Org {i}", kind="organisation", org_type=org_type, country=country))
    b.sign(db, letter, b.actor(db, "Person", country=None))
    doc = anon.get("/v1/letters/ngos/counts").json()
    assert _entries(doc, "org_type") == [
        ("ngo", "NGO", 3),
        (None, "Unknown", 2),
        ("faith", "Faith", 1),
        ("union", "Union", 1),
    ]
    assert _entries(doc, "country") == [
        ("AR", "Argentina", 2),
        ("DE", "Germany", 2),
        (None, "Unknown", 2),
        ("BE", "Belgium", 1),
    ]
    assert _entries(doc, "kind") == [("organisation", "Organisation", 6), ("person", "Person", 1)]
    assert doc["by_body"] == [{"key": None, "label": "Unknown", "count": 7, "share_of_body": None}]


def test_share_of_body_counts_seats_on_the_letters_date(anon: TestClient, db: Session) -> None:
    commons = b.body(db, "commons", "House of Commons")
    empty = b.body(db, "empty-house")
    letter = b.letter(db, "share", published_on=D(2020, 9, 9))
    members = [b.actor(db, f"MP {i}") for i in range(8)]
    for m in members[:6]:
        b.membership(db, m, commons, None, D(2019, 12, 12))
    b.membership(db, members[6], commons, None, D(2020, 9, 10))  # not yet seated on the letter's date
    b.membership(db, members[7], commons, None, D(2015, 1, 1), D(2020, 9, 8))  # gone the day before
    # A seat counted once even with two memberships valid that day.
    b.membership(db, members[0], commons, None, D(2020, 1, 1))
    for m in members[:3]:
        b.sign(db, letter, m, D(2020, 9, 9))
    b.sign(db, letter, members[6], D(2020, 9, 11))  # seated when they signed, so counted in the body
    ghost = b.actor(db, "Ghost")
    b.membership(db, ghost, empty, None, D(2020, 9, 10), D(2020, 9, 20))
    b.sign(db, letter, ghost, D(2020, 9, 11))
    doc = anon.get("/v1/letters/share/counts", params={"as_of": "2020-10-01"}).json()
    body = {e["key"]: e for e in doc["by_body"]}
    assert body["commons"]["count"] == 4
    assert body["commons"]["share_of_body"] == 4 / 6
    assert body["empty-house"]["share_of_body"] is None  # no seats held on the letter's date


def test_csv(anon: TestClient, db: Session) -> None:
    commons = b.body(db, "commons", "House of Commons")
    letter = b.letter(db, "csv-letter")
    mp = b.actor(db, "MP", country="GB")
    b.membership(db, mp, commons, None, D(2019, 1, 1))
    b.sign(db, letter, mp)
    b.sign(db, letter, b.actor(db, "Org", kind="organisation", org_type="ngo"))
    r = anon.get("/v1/letters/csv-letter/counts", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["breakdown", "key", "label", "count", "share_of_body"]
    assert ["body", "commons", "House of Commons", "1", "1.0"] in rows
    assert ["body", "", "Unknown", "1", ""] in rows
    assert ["org_type", "ngo", "NGO", "1", ""] in rows
    assert {r[0] for r in rows[1:]} == {"kind", "body", "party", "country", "org_type"}
    accept = anon.get("/v1/letters/csv-letter/counts", headers={"Accept": "text/csv"})
    assert accept.text == r.text


def test_cache_headers(anon: TestClient, db: Session) -> None:
    b.letter(db, "cached")
    r = anon.get("/v1/letters/cached/counts")
    # A CDN may serve its copy for a minute, then a stale one while it revalidates.
    assert r.headers["cache-control"] == "public, max-age=60, stale-while-revalidate=600"
    assert r.headers["etag"].startswith('"')  # strong
    again = anon.get("/v1/letters/cached/counts", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["cache-control"] == r.headers["cache-control"]
    assert again.headers["etag"] == r.headers["etag"]


def test_bad_input(anon: TestClient, db: Session) -> None:
    b.letter(db, "real")
    r = anon.get("/v1/letters/nope/counts")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = anon.get("/v1/letters/real/counts", params={"as_of": "2020-13-01"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.as_of"
    r = anon.get("/v1/letters/real/counts", params={"format": "xml"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.format"


def test_repeat_reads_come_from_the_cache_and_writes_are_seen_at_once(client: TestClient) -> None:
    client.post("/v1/letters", json={"slug": "cached", "title": "C", "published_on": "2020-09-09"})
    first = client.get("/v1/letters/cached/counts")
    again = client.get("/v1/letters/cached/counts")
    assert first.content == again.content and first.headers["etag"] == again.headers["etag"]
    client.post("/v1/letters/cached/signatures", json={"actor": {"kind": "organisation", "name": "New"}})
    after = client.get("/v1/letters/cached/counts")
    assert after.json()["recorded"] == first.json()["recorded"] + 1
    assert after.headers["etag"] != first.headers["etag"]
