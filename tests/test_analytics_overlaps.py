"""Overlaps between letters, the actors in an overlap, and co-signatories."""

from __future__ import annotations

import csv
import io
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Actor, Letter, Signature
from tests import builders as b
from tests.live import hot_reads, live_server


def _scenario(db: Session) -> tuple[list[Letter], list[Actor]]:
    """a: 0 1 2 3 (4 withdrawn); b: 2 3 4 5; c: 3 5 6 (0 withdrawn)."""
    letters = [b.letter(db, slug) for slug in ("a", "b", "c")]
    actors = [b.actor(db, f"Actor {i}", identifiers={"wikidata": f"Q{100 + i}"}) for i in range(8)]
    la, lb, lc = letters
    for i in (0, 1, 2, 3):
        b.sign(db, la, actors[i])
    b.sign(db, la, actors[4], date(2020, 9, 9), withdrawn_on=date(2020, 9, 10))
    for i in (2, 3, 4, 5):
        b.sign(db, lb, actors[i])
    for i in (3, 5, 6):
        b.sign(db, lc, actors[i])
    b.sign(db, lc, actors[0], date(2020, 9, 9), withdrawn_on=date(2020, 9, 9))
    return letters, actors


def test_sizes_pairs_and_exact_intersections(anon: TestClient, db: Session) -> None:
    _scenario(db)
    r = anon.get("/v1/overlaps", params={"letters": "a,b,c"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["letters"] == ["a", "b", "c"]
    assert doc["sizes"] == {"a": 4, "b": 4, "c": 3}
    assert doc["union"] == 7
    assert doc["pairs"] == [
        {"a": "a", "b": "b", "common": 2, "jaccard": 2 / 6},
        {"a": "a", "b": "c", "common": 1, "jaccard": 1 / 6},
        {"a": "b", "b": "c", "common": 2, "jaccard": 2 / 5},
    ]
    # 0,1 -> {a}; 2 -> {a,b}; 3 -> {a,b,c}; 4 -> {b}; 5 -> {b,c}; 6 -> {c}
    assert doc["intersections"] == [
        {"letters": ["a"], "count": 2},
        {"letters": ["a", "b"], "count": 1},
        {"letters": ["a", "b", "c"], "count": 1},
        {"letters": ["b"], "count": 1},
        {"letters": ["b", "c"], "count": 1},
        {"letters": ["c"], "count": 1},
    ]
    assert sum(i["count"] for i in doc["intersections"]) == doc["union"]


def test_order_follows_the_letters_given(anon: TestClient, db: Session) -> None:
    _scenario(db)
    doc = anon.get("/v1/overlaps", params={"letters": "c,a"}).json()
    assert doc["letters"] == ["c", "a"] and list(doc["sizes"]) == ["c", "a"]
    assert doc["pairs"] == [{"a": "c", "b": "a", "common": 1, "jaccard": 1 / 6}]
    assert doc["intersections"] == [
        {"letters": ["a"], "count": 3},
        {"letters": ["c"], "count": 2},
        {"letters": ["c", "a"], "count": 1},
    ]


def test_no_signatures_gives_zero_jaccard(anon: TestClient, db: Session) -> None:
    b.letter(db, "x")
    b.letter(db, "y")
    doc = anon.get("/v1/overlaps", params={"letters": "x,y"}).json()
    assert doc["union"] == 0 and doc["intersections"] == []
    assert doc["pairs"] == [{"a": "x", "b": "y", "common": 0, "jaccard": 0.0}]


def test_fifty_letters_fit_the_bitmask(anon: TestClient, db: Session) -> None:
    letters = [b.letter(db, f"l{i:02d}") for i in range(50)]
    everyone = b.actor(db, "Everyone")
    last_only = b.actor(db, "Last only")
    for letter in letters:
        b.sign(db, letter, everyone)
    b.sign(db, letters[-1], last_only)
    doc = anon.get("/v1/overlaps", params={"letters": ",".join(x.slug for x in letters)}).json()
    assert doc["union"] == 2 and len(doc["pairs"]) == 50 * 49 // 2
    assert doc["intersections"] == [
        {"letters": [x.slug for x in letters], "count": 1},
        {"letters": ["l49"], "count": 1},
    ]


@pytest.mark.parametrize("n", [3, 4, 7, 50])
def test_intersections_equal_a_recomputation_from_the_signatures(
    anon: TestClient, db: Session, n: int
) -> None:
    """Random signatures (some withdrawn, some on letters not asked for) over n letters: the
    intersections are each actor's exact set of the given letters, counted, as Python finds
    them from the signature rows."""
    rng = random.Random(n)
    letters = [b.letter(db, f"r{i:02d}") for i in range(n + 2)]  # the last two never asked for
    actors = [b.actor(db, f"Random {i}") for i in range(120)]
    with b.many_signatures(db):
        for who in actors:
            for letter in rng.sample(letters, rng.randint(0, min(len(letters), 9))):
                gone = date(2020, 9, 10) if rng.random() < 0.2 else None
                b.sign(db, letter, who, date(2020, 9, 9), withdrawn_on=gone)
    asked = rng.sample(letters[:n], n)  # in an order of their own
    position = {letter.id: i for i, letter in enumerate(asked)}
    sets: dict[int, set[int]] = {}
    for sig in db.query(Signature).filter(Signature.withdrawn_on.is_(None)):
        if sig.letter_id in position:
            sets.setdefault(sig.actor_id, set()).add(position[sig.letter_id])
    expected: dict[tuple[str, ...], int] = {}
    for members in sets.values():
        key = tuple(asked[i].slug for i in sorted(members))
        expected[key] = expected.get(key, 0) + 1

    r = anon.get("/v1/overlaps", params={"letters": ",".join(x.slug for x in asked)})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert {tuple(i["letters"]): i["count"] for i in doc["intersections"]} == expected
    assert len(doc["intersections"]) == len(expected)
    assert doc["union"] == len(sets)
    order = [
        (-i["count"], [position[x.id] for x in asked if x.slug in i["letters"]]) for i in doc["intersections"]
    ]
    assert order == sorted(order)


def test_readers_of_an_overlap_who_miss_together_share_one_computation(migrated_database_url: str) -> None:
    """The exact intersections of many letters are the costliest read: 16 readers who come
    together after a write wait for one computation, and the readers after them get its bytes
    (the validator read in the computing session is the one the readers were keyed by)."""
    slugs = [f"crowd-{i}" for i in range(5)]
    with live_server(migrated_database_url) as live, live.client() as c:
        for slug in slugs:
            assert c.post(
                "/v1/letters", json={"slug": slug, "title": slug, "published_on": "2020-09-01"}
            ).is_success
        for i, slug in enumerate(slugs):
            rows = ["name,kind"] + [f"Crowd member {n:04d},person" for n in range(i * 40, i * 40 + 120)]
            imported = c.post(
                f"/v1/letters/{slug}/signatures/import",
                content="\n".join(rows).encode(),
                headers={"Content-Type": "text/csv"},
            )
            assert imported.status_code == 200, imported.text
        path = "/v1/overlaps?letters=" + ",".join(slugs)
        readers = 16
        clients = [live.client(auth=False) for _ in range(readers)]
        for mine in clients:  # connections open before the crowd comes
            assert mine.get("/healthz").status_code == 200
        gate = threading.Barrier(readers)

        def read(mine: httpx.Client) -> bytes:
            gate.wait()
            response = mine.get(path)
            assert response.status_code == 200
            return response.content

        before = hot_reads(c)
        with ThreadPoolExecutor(readers) as pool:
            bodies = list(pool.map(read, clients))
        after = hot_reads(c)
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        assert len(set(bodies)) == 1 and httpx.Response(200, content=bodies[0]).json()["union"] > 0
        assert delta.get("rendered") == 1, delta
        assert delta.get("joined", 0) + delta.get("cached", 0) == readers - 1, delta

        with ThreadPoolExecutor(readers) as pool:  # then every reader is answered from memory
            assert set(pool.map(read, clients)) == set(bodies)
        again = hot_reads(c)
        assert again.get("rendered") == after.get("rendered"), again
        for mine in clients:
            mine.close()


def test_campaign_letters(anon: TestClient, db: Session) -> None:
    camp = b.campaign(db, "camp")
    one = b.campaign(db, "one")
    b.letter(db, "first", campaign=camp)
    b.letter(db, "second", campaign=camp)
    b.letter(db, "alone", campaign=one)
    doc = anon.get("/v1/overlaps", params={"campaign": "camp"}).json()
    assert doc["letters"] == ["first", "second"]
    r = anon.get("/v1/overlaps", params={"campaign": "one"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.campaign"
    assert anon.get("/v1/overlaps", params={"campaign": "nope"}).status_code == 404


def test_bad_letter_lists(anon: TestClient, db: Session) -> None:
    for i in range(51):
        b.letter(db, f"m{i}")
    for letters in ("m1", "m1,m1", "", ",".join(f"m{i}" for i in range(51))):
        r = anon.get("/v1/overlaps", params={"letters": letters})
        assert r.status_code == 422, letters
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"][0]["field"] == "query.letters"
    assert anon.get("/v1/overlaps").status_code == 422
    r = anon.get("/v1/overlaps", params={"letters": "m1,ghost"})
    assert r.status_code == 404 and "ghost" in r.json()["detail"]
    r = anon.get("/v1/overlaps/signatories", params={"letters": "m1,m2", "match": "some"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.match"
    assert anon.get("/v1/overlaps/signatories", params={"letters": "m1"}).status_code == 422


def test_csv_pairs(anon: TestClient, db: Session) -> None:
    _scenario(db)
    r = anon.get("/v1/overlaps", params={"letters": "a,b,c", "format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["a", "b", "common", "jaccard"]
    assert rows[1][:3] == ["a", "b", "2"] and float(rows[1][3]) == 2 / 6
    assert len(rows) == 4


def test_signatories_all_any_only(anon: TestClient, db: Session) -> None:
    _, actors = _scenario(db)

    def ids(match: str, letters: str = "a,b,c", limit: int = 50) -> list[int]:
        out: list[int] = []
        params: dict[str, str | int] = {"letters": letters, "match": match, "limit": limit}
        while True:
            r = anon.get("/v1/overlaps/signatories", params=params)
            assert r.status_code == 200, r.text
            page = r.json()
            out += [a["id"] for a in page["items"]]
            if not page["next_cursor"]:
                return out
            assert 'rel="next"' in r.headers["link"]
            params["cursor"] = page["next_cursor"]

    aid = [a.id for a in actors]
    assert ids("all") == [aid[3]]
    assert ids("any") == aid[:7]
    assert ids("any", limit=2) == aid[:7]
    assert ids("only") == [aid[0], aid[1]]
    assert ids("only", "b,a") == [aid[4], aid[5]]
    assert ids("only", "c,a,b") == [aid[6]]
    assert ids("all", "a,b") == [aid[2], aid[3]]
    item = anon.get("/v1/overlaps/signatories", params={"letters": "a,b", "match": "all"}).json()["items"][0]
    assert item["name"] == "Actor 2" and item["identifiers"] == [{"scheme": "wikidata", "value": "Q102"}]
    assert {"kind", "country", "org_type", "sort_name", "created_at", "updated_at"} <= set(item)


def test_co_signatories(anon: TestClient, db: Session) -> None:
    letters = [b.letter(db, f"c{i}") for i in range(4)]
    me, x, y, z, w, gone = (b.actor(db, n) for n in ("Me", "X", "Y", "Z", "W", "Gone"))
    for letter in letters:
        b.sign(db, letter, me)
    for letter in letters[:3]:
        b.sign(db, letter, y)
    b.sign(db, letters[0], x)
    b.sign(db, letters[1], x)
    b.sign(db, letters[2], w)
    b.sign(db, letters[3], w)
    b.sign(db, letters[0], z)
    for letter in letters:  # every one of these withdrawn: never counts
        b.sign(db, letter, gone, date(2020, 9, 9), withdrawn_on=date(2020, 9, 10))
    other = b.letter(db, "mine-withdrawn")
    b.sign(db, other, me, date(2020, 9, 9), withdrawn_on=date(2020, 9, 9))
    b.sign(db, other, z)

    seen: list[tuple[str, int]] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = anon.get(f"/v1/actors/{me.id}/co-signatories", params=params).json()
        seen += [(i["actor"]["name"], i["shared_letters"]) for i in page["items"]]
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [("Y", 3), ("X", 2), ("W", 2), ("Z", 1)]
    assert x.id < w.id  # the tie between X and W goes by actor id
    assert anon.get("/v1/actors/999999/co-signatories").status_code == 404
    assert anon.get("/v1/actors/nope/co-signatories").status_code == 422
