"""Reach of a campaign: distinct actors, counted once, by party and body as of their latest
signature that still counts."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import builders as b

D = date


def test_reach(anon: TestClient, db: Session) -> None:
    commons = b.body(db, "commons", "House of Commons")
    lords = b.body(db, "lords", "House of Lords")
    lab, con = b.party(db, "labour", "Labour"), b.party(db, "conservative", "Conservative")
    camp = b.campaign(db, "xinjiang")
    first = b.letter(db, "first", campaign=camp)
    second = b.letter(db, "second", campaign=camp)
    third = b.letter(db, "third", campaign=camp)
    outside = b.letter(db, "outside")

    # Signed twice, switched party in between: counted once, under the party of the latest.
    mover = b.actor(db, "Mover", country="GB")
    b.membership(db, mover, commons, con, D(2015, 1, 1), D(2020, 9, 30))
    b.membership(db, mover, commons, lab, D(2020, 10, 1))
    b.sign(db, first, mover, D(2020, 9, 9))
    b.sign(db, second, mover, D(2020, 10, 5))
    # Latest signature withdrawn: the earlier one (as a Commons member) is the one that counts.
    peer = b.actor(db, "Peer", country="GB")
    b.membership(db, peer, commons, con, D(2010, 1, 1), D(2020, 9, 20))
    b.membership(db, peer, lords, None, D(2020, 9, 21))
    b.sign(db, first, peer, D(2020, 9, 9))
    b.sign(db, third, peer, D(2020, 11, 1), withdrawn_on=D(2020, 11, 2))
    # Every signature withdrawn: not reached.
    gone = b.actor(db, "Gone", country="GB")
    b.sign(db, first, gone, D(2020, 9, 9), withdrawn_on=D(2020, 9, 10))
    # Organisations, on one and on all three letters.
    ngo = b.actor(db, "NGO", kind="organisation", org_type="ngo", country="FR")
    for letter in (first, second, third):
        b.sign(db, letter, ngo)
    union = b.actor(db, "Union", kind="organisation", org_type="union")
    b.sign(db, third, union)
    # Only outside the campaign: not reached.
    b.sign(db, outside, b.actor(db, "Outsider", country="US"))

    r = anon.get("/v1/campaigns/xinjiang/reach")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["campaign"] == "xinjiang" and doc["letters"] == 3
    assert doc["distinct"] == 4 and doc["signed_more_than_one"] == 2
    assert [(e["key"], e["count"]) for e in doc["by_party"]] == [
        (None, 2),
        ("conservative", 1),
        ("labour", 1),
    ]
    assert [(e["key"], e["label"], e["count"], e["share_of_body"]) for e in doc["by_body"]] == [
        ("commons", "House of Commons", 2, 1.0),  # the two seats held on 2020-09-09: both reached
        (None, "Unknown", 2, None),
    ]
    assert doc["seats_on"] == "2020-09-09"
    assert [(e["key"], e["count"]) for e in doc["by_kind"]] == [("organisation", 2), ("person", 2)]
    assert [(e["key"], e["count"]) for e in doc["by_country"]] == [("GB", 2), ("FR", 1), (None, 1)]
    assert [(e["key"], e["label"], e["count"]) for e in doc["by_org_type"]] == [
        (None, "Unknown", 2),
        ("ngo", "NGO", 1),
        ("union", "Union", 1),
    ]
    for name in ("kind", "body", "party", "country", "org_type"):
        assert sum(e["count"] for e in doc[f"by_{name}"]) == doc["distinct"]


def test_empty_campaign(anon: TestClient, db: Session) -> None:
    b.campaign(db, "empty")
    doc = anon.get("/v1/campaigns/empty/reach").json()
    assert doc["letters"] == 0 and doc["distinct"] == 0 and doc["signed_more_than_one"] == 0
    assert doc["by_kind"] == [] and doc["by_body"] == []
    assert doc["seats_on"] == date.today().isoformat()


def test_reach_share_of_body_is_the_letters_share_on_the_same_day(anon: TestClient, db: Session) -> None:
    """A campaign of letters of one day gives each body the share its letter's counts give; a
    campaign over several days counts seats on its newest letter's date, and says which."""
    commons = b.body(db, "commons", "House of Commons")
    lords = b.body(db, "lords", "House of Lords")
    members = [b.actor(db, f"MP {i}") for i in range(8)]
    for mp in members[:6]:
        b.membership(db, mp, commons, None, D(2019, 12, 12))
    for peer in members[6:]:
        b.membership(db, peer, lords, None, D(2000, 1, 1))
    late = b.actor(db, "By-election winner")
    b.membership(db, late, commons, None, D(2020, 10, 1))  # a seventh Commons seat from October

    camp = b.campaign(db, "one-day")
    letter = b.letter(db, "the-letter", campaign=camp, published_on=D(2020, 9, 9))
    for who in (members[0], members[1], members[6]):
        b.sign(db, letter, who, D(2020, 9, 9))
    counts = anon.get("/v1/letters/the-letter/counts").json()
    reach = anon.get("/v1/campaigns/one-day/reach").json()
    shares = {e["key"]: e["share_of_body"] for e in counts["by_body"]}
    assert shares == {"commons": 2 / 6, "lords": 1 / 2}
    assert {e["key"]: e["share_of_body"] for e in reach["by_body"]} == shares
    assert reach["seats_on"] == "2020-09-09"

    later = b.letter(db, "later", campaign=camp, published_on=D(2020, 10, 5))
    b.sign(db, later, members[2], D(2020, 10, 5))
    b.sign(db, later, late, D(2020, 10, 5))
    db.commit()
    reach = anon.get("/v1/campaigns/one-day/reach").json()
    assert reach["seats_on"] == "2020-10-05"
    later_counts = anon.get("/v1/letters/later/counts").json()
    assert {e["key"]: e["share_of_body"] for e in later_counts["by_body"]} == {"commons": 2 / 7}
    assert {e["key"]: e["share_of_body"] for e in reach["by_body"]} == {"commons": 4 / 7, "lords": 1 / 2}
