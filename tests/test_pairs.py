"""The pair counts kept by every write agree with a recomputation from the signatures, after
random writes of every kind that moves them (signatures, withdrawals, reinstatements, re-dated
signatures, actors and letters deleted, CSV imports, bulk loads); overlaps read them and are
kept by the versions of the letters they cover."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.orm import Session

from app import pairs
from app.imports.dump.files import directory_source
from app.imports.dump.load import load_registry
from app.models import LetterPair
from tests import builders as b
from tests.conftest import end_example

DAY0 = date(2020, 9, 1)


def _day(offset: int) -> str:
    return (DAY0 + timedelta(days=offset)).isoformat()


@dataclass
class World:
    """What the test wrote, and what should count: (letter slug, actor id) → still counts."""

    letters: list[str] = field(default_factory=list)
    actors: list[int] = field(default_factory=list)
    signed: dict[tuple[str, int], bool] = field(default_factory=dict)

    def common(self, x: str, y: str) -> int:
        return sum(1 for a in self.actors if self.signed.get((x, a)) and self.signed.get((y, a)))

    def size(self, x: str) -> int:
        return sum(1 for (slug, _), counts in self.signed.items() if slug == x and counts)


OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["sign", "sign", "sign", "withdraw", "reinstate", "redate", "import", "actor", "letter", "drop"]
        ),
        st.integers(0, 30),
        st.integers(0, 30),
        st.integers(0, 9),
    ),
    min_size=5,
    max_size=40,
)


def _apply(client: TestClient, admin: TestClient, world: World, op: tuple[str, int, int, int]) -> None:
    kind, li, ai, day = op
    slug = world.letters[li % len(world.letters)] if world.letters else None
    actor = world.actors[ai % len(world.actors)] if world.actors else None
    if kind == "letter" or slug is None:
        slug = f"pl-{uuid.uuid4().hex[:10]}"
        r = client.post("/v1/letters", json={"slug": slug, "title": slug, "published_on": _day(0)})
        assert r.status_code == 201, r.text
        world.letters.append(slug)
    elif kind == "actor" or actor is None:
        r = client.post("/v1/actors", json={"kind": "organisation", "name": f"Org {uuid.uuid4().hex}"})
        assert r.status_code == 201, r.text
        world.actors.append(r.json()["id"])
    elif kind == "sign":
        r = client.post(f"/v1/letters/{slug}/signatures", json={"actor_id": actor, "signed_on": _day(day)})
        assert r.status_code == (409 if (slug, actor) in world.signed else 201), r.text
        world.signed.setdefault((slug, actor), True)
    elif kind == "withdraw":
        r = client.delete(f"/v1/letters/{slug}/signatures/{actor}", params={"on": _day(10 + day)})
        state = world.signed.get((slug, actor))  # (None: never signed; False: withdrawn)
        assert r.status_code == {None: 404, True: 200, False: 409}[state], r.text
        if state:
            world.signed[(slug, actor)] = False
    elif kind == "reinstate":
        r = client.patch(f"/v1/letters/{slug}/signatures/{actor}", json={"withdrawn_on": None})
        assert r.status_code == (200 if (slug, actor) in world.signed else 404), r.text
        if (slug, actor) in world.signed:
            world.signed[(slug, actor)] = True
    elif kind == "redate":
        r = client.patch(f"/v1/letters/{slug}/signatures/{actor}", json={"signed_on": _day(day)})
        # (a signing day is never after a withdrawal here: those are days 10 to 19, these 0 to 9)
        assert r.status_code == (200 if (slug, actor) in world.signed else 404), r.text
    elif kind == "import":
        _import(client, world, slug, ai, day)
    elif li % 2:  # drop: a letter (admin) and everything signed on it
        r = admin.delete(f"/v1/letters/{slug}")
        assert r.status_code == 204, r.text
        world.letters.remove(slug)
        world.signed = {k: v for k, v in world.signed.items() if k[0] != slug}
    else:  # drop: an actor, refused while it signed anything
        r = admin.delete(f"/v1/actors/{actor}")
        signed = any(a == actor for _, a in world.signed)
        assert r.status_code == (409 if signed else 204), r.text
        if not signed:
            world.actors.remove(actor)


def _import(client: TestClient, world: World, slug: str, ai: int, day: int) -> None:
    """A CSV import naming some actors the registry has (matched by name) and some new ones."""
    names = {a: f"Org {a}" for a in world.actors}
    for actor_id in world.actors:  # the names the actors were made with
        r = client.get(f"/v1/actors/{actor_id}")
        names[actor_id] = r.json()["name"]
    known = world.actors[ai % 3 :: 3] if world.actors else []
    rows = [f"{names[a]},organisation,{_day(day)}" for a in known]
    rows += [f"Org {uuid.uuid4().hex},organisation,{_day(day)}" for _ in range(1 + ai % 3)]
    r = client.post(
        f"/v1/letters/{slug}/signatures/import",
        content=("name,kind,signed_on\n" + "\n".join(rows) + "\n").encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    for row in r.json()["rows"]:
        if row["status"] in ("created", "matched"):
            actor_id = row["actor"]["id"]
            if actor_id not in world.actors:
                world.actors.append(actor_id)
            world.signed[(slug, actor_id)] = True


def _check(anon: TestClient, db: Session, world: World) -> None:
    db.expire_all()
    assert pairs.snapshot(db) == pairs.recomputed(db)
    live = world.letters[:6]
    for x, y in combinations(live, 2):
        doc = anon.get("/v1/overlaps", params={"letters": f"{x},{y}"}).json()
        assert doc["sizes"] == {x: world.size(x), y: world.size(y)}
        assert doc["pairs"][0]["common"] == world.common(x, y), (x, y)
        assert doc["union"] == world.size(x) + world.size(y) - world.common(x, y)
    if len(live) >= 3:  # the exact path (over the signatures) agrees with the pair rows
        doc = anon.get("/v1/overlaps", params={"letters": ",".join(live)}).json()
        for p in doc["pairs"]:
            exact = sum(i["count"] for i in doc["intersections"] if {p["a"], p["b"]} <= set(i["letters"]))
            assert p["common"] == exact == world.common(p["a"], p["b"])


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
def test_kept_pairs_equal_a_recomputation_after_random_writes(
    client: TestClient, admin: TestClient, anon: TestClient, db: Session, ops: list[tuple[str, int, int, int]]
) -> None:
    try:
        world = World()
        for op in [("letter", 0, 0, 0)] * 3 + [("actor", 0, 0, 0)] * 4 + ops:
            _apply(client, admin, world, op)
        _check(anon, db, world)
    finally:
        end_example(db)


def test_a_bulk_load_builds_the_pairs(anon: TestClient, db: Session, tmp_path: Path) -> None:
    """A load into a registry that has data (and pairs of its own) rebuilds every pair."""
    from tests.test_dump import make_dump

    earlier = [b.letter(db, slug) for slug in ("pre-a", "pre-b")]
    someone = b.actor(db, "Before the load")
    for letter in earlier:
        b.sign(db, letter, someone)
    load_registry(db, "test", directory_source(make_dump(tmp_path / "dump")), bulk=True)
    db.flush()
    kept = pairs.snapshot(db)
    assert kept == pairs.recomputed(db) and len(kept) == 9  # 6 letters, 3 pairs
    doc = anon.get("/v1/overlaps", params={"letters": "l1,l2,l3"}).json()
    for p in doc["pairs"]:
        exact = sum(i["count"] for i in doc["intersections"] if {p["a"], p["b"]} <= set(i["letters"]))
        assert p["common"] == exact
    assert [p["common"] > 0 for p in doc["pairs"]] == [False, True, False]  # l1 and l3 share
    two = anon.get("/v1/overlaps", params={"letters": "l1,l3"}).json()
    assert two["pairs"] == [doc["pairs"][1]] and two["sizes"] == {s: doc["sizes"][s] for s in ("l1", "l3")}
    assert anon.get("/v1/overlaps", params={"letters": "pre-a,pre-b"}).json()["pairs"][0]["common"] == 1


# --- validators -------------------------------------------------------------------------------


@pytest.fixture
def three(client: TestClient) -> Iterator[dict[str, Any]]:
    client.post("/v1/campaigns", json={"slug": "pc", "name": "PC"})
    for slug, campaign in (("pa", "pc"), ("pb", "pc"), ("pz", None)):
        body = {"slug": slug, "title": slug.upper(), "published_on": "2020-09-01", "campaign": campaign}
        assert client.post("/v1/letters", json=body).status_code == 201
    actors = [
        client.post("/v1/actors", json={"kind": "organisation", "name": f"Pair Org {i}"}).json()["id"]
        for i in range(4)
    ]
    for slug, who in (("pa", actors[:3]), ("pb", actors[1:]), ("pz", actors[:2])):
        for a in who:
            assert client.post(f"/v1/letters/{slug}/signatures", json={"actor_id": a}).status_code == 201
    yield {"actors": actors}


READS = [
    ("/v1/overlaps", {"letters": "pa,pb"}),
    ("/v1/overlaps", {"letters": "pa,pb", "format": "csv"}),
    ("/v1/overlaps", {"campaign": "pc"}),
    ("/v1/overlaps/signatories", {"letters": "pa,pb", "match": "any"}),
    ("/v1/overlaps.svg", {"letters": "pa,pb"}),
    ("/v1/overlaps.svg", {"letters": "pa,pb", "chart": "upset"}),
    ("/v1/campaigns/pc/reach", {}),
]


def _etags(anon: TestClient, extra: list[tuple[str, dict[str, Any]]]) -> list[str]:
    tags = []
    for url, params in READS + extra:
        r = anon.get(url, params=params)
        assert r.status_code == 200, (url, r.text)
        tags.append(r.headers["etag"])
        again = anon.get(url, params=params, headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b"", url
        assert again.headers["etag"] == r.headers["etag"]
    return tags


def test_a_write_to_another_letter_leaves_the_overlap_validators_alone(
    client: TestClient, anon: TestClient, three: dict[str, Any]
) -> None:
    actors = three["actors"]
    co: list[tuple[str, dict[str, Any]]] = [(f"/v1/actors/{actors[3]}/co-signatories", {})]  # pb only
    before = _etags(anon, co)
    newcomer = client.post("/v1/actors", json={"kind": "organisation", "name": "Elsewhere"}).json()["id"]
    assert client.post("/v1/letters/pz/signatures", json={"actor_id": newcomer}).status_code == 201
    assert client.delete(f"/v1/letters/pz/signatures/{actors[0]}").status_code == 200
    assert _etags(anon, co) == before

    # A write to a covered letter moves every validator that covers it, and the answer.
    assert client.post("/v1/letters/pa/signatures", json={"actor_id": actors[3]}).status_code == 201
    after = _etags(anon, co)
    assert all(x != y for x, y in zip(before, after, strict=True))
    doc = anon.get("/v1/overlaps", params={"letters": "pa,pb"}).json()
    assert doc["pairs"][0]["common"] == 3 and doc["sizes"] == {"pa": 4, "pb": 3}
    listed = anon.get(f"/v1/actors/{actors[3]}/co-signatories").json()["items"]
    assert {i["actor"]["id"]: i["shared_letters"] for i in listed} == {
        actors[0]: 1,
        actors[1]: 2,
        actors[2]: 2,
    }


def test_a_withdrawal_moves_the_validator_and_the_pair(
    client: TestClient, anon: TestClient, three: dict[str, Any]
) -> None:
    first = anon.get("/v1/overlaps", params={"letters": "pb,pa"})
    assert first.json()["pairs"][0]["common"] == 2
    assert client.delete(f"/v1/letters/pb/signatures/{three['actors'][1]}").status_code == 200
    r = anon.get(
        "/v1/overlaps", params={"letters": "pb,pa"}, headers={"If-None-Match": first.headers["etag"]}
    )
    assert r.status_code == 200 and r.headers["etag"] != first.headers["etag"]
    assert r.json()["pairs"][0] == {"a": "pb", "b": "pa", "common": 1, "jaccard": 1 / 4}
    assert r.json()["intersections"] == [
        {"letters": ["pa"], "count": 2},
        {"letters": ["pb"], "count": 1},
        {"letters": ["pb", "pa"], "count": 1},
    ]
    # Reinstated: the pair is back.
    body = {"withdrawn_on": None}
    assert client.patch(f"/v1/letters/pb/signatures/{three['actors'][1]}", json=body).status_code == 200
    assert anon.get("/v1/overlaps", params={"letters": "pa,pb"}).json()["pairs"][0]["common"] == 2


def test_a_letter_joining_the_campaign_moves_the_campaign_validators(
    client: TestClient, anon: TestClient, three: dict[str, Any]
) -> None:
    before = anon.get("/v1/overlaps", params={"campaign": "pc"})
    reach = anon.get("/v1/campaigns/pc/reach")
    assert before.json()["letters"] == ["pa", "pb"] and reach.json()["distinct"] == 4
    assert client.patch("/v1/letters/pz", json={"campaign": "pc"}).status_code == 200
    after = anon.get(
        "/v1/overlaps", params={"campaign": "pc"}, headers={"If-None-Match": before.headers["etag"]}
    )
    assert after.status_code == 200 and after.json()["letters"] == ["pa", "pb", "pz"]
    moved = anon.get("/v1/campaigns/pc/reach", headers={"If-None-Match": reach.headers["etag"]})
    assert moved.status_code == 200 and moved.json()["letters"] == 3


def test_errors_are_not_kept(client: TestClient, anon: TestClient, three: dict[str, Any]) -> None:
    r = anon.get("/v1/overlaps", params={"letters": "pa,nope"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert client.post("/v1/letters", json={"slug": "nope", "title": "Nope"}).status_code == 201
    assert anon.get("/v1/overlaps", params={"letters": "pa,nope"}).status_code == 200
    r = anon.get("/v1/overlaps", params={"letters": "pa"})
    assert r.status_code == 422 and "letters" in r.text
    assert anon.get("/v1/overlaps", params={"letters": "pa,pb", "campaign": "pc"}).status_code == 422
    assert anon.get("/v1/campaigns/none/reach").status_code == 404
    assert anon.get("/v1/actors/999999999/co-signatories").status_code == 404
    assert anon.get("/v1/overlaps.svg", params={"campaign": "none"}).status_code == 404


def test_cli_rebuild_reports_pair_drift(migrated_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from app.cli import cli
    from app.config import Settings, get_settings
    from app.db.database import Database, session_scope
    from app.db.engine import create_engine_for

    database = Database(create_engine_for(Settings(database_url=migrated_database_url)))
    with session_scope(database.write_sessions) as session:
        letters = [b.letter(session, f"drift-{i}") for i in range(3)]
        for i in range(2):
            someone = b.actor(session, f"D{i}", kind="organisation")
            for letter in letters:
                b.sign(session, letter, someone)
        session.execute(update(LetterPair).values(common=LetterPair.common + 1))  # damage them
    database.dispose()
    monkeypatch.setenv("DATABASE_URL", migrated_database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["db", "rebuild-rollups"])
        again = CliRunner().invoke(cli, ["db", "rebuild-rollups"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "rebuilt 6 pair rows; 12 differed from the ones kept by the writes" in result.output
    assert "rebuilt 6 pair rows; 0 differed" in again.output
