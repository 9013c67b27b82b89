"""The rollups kept by every write agree with a rebuild from the signatures, after random
writes of every kind that moves them: signatures, withdrawals, reinstatements, edits of the
signing day, membership added, edited and removed, actors' country and org type changed."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import pairs, rollups
from app.models import Letter

DAY0 = date(2020, 9, 1)


def _day(rng: random.Random, span: int = 30) -> str:
    return (DAY0 + timedelta(days=rng.randrange(span))).isoformat()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_rollups_equal_a_rebuild(
    client: TestClient, admin: TestClient, db: Session, seed: int
) -> None:
    rng = random.Random(seed)
    for slug in ("house", "senate"):
        client.post("/v1/bodies", json={"slug": slug, "name": slug.title()})
    for slug in ("red", "blue", "green"):
        client.post("/v1/parties", json={"slug": slug, "name": slug.title()})
    letters = [f"r{seed}-letter-{i}" for i in range(3)]
    for slug in letters:
        client.post("/v1/letters", json={"slug": slug, "title": slug, "published_on": "2020-09-01"})
    people, orgs = [], []
    for i in range(8):
        people.append(client.post("/v1/actors", json={"kind": "person", "name": f"P{seed}-{i}"}).json()["id"])
        orgs.append(
            client.post(
                "/v1/actors",
                json={
                    "kind": "organisation",
                    "name": f"O{seed}-{i}",
                    "country": rng.choice(["GB", "FR", None]),
                },
            ).json()["id"]
        )
    memberships: dict[int, list[int]] = {p: [] for p in people}
    signed: list[tuple[str, int]] = []
    for _ in range(140):
        op = rng.randrange(11)
        if op <= 2:
            slug, actor = rng.choice(letters), rng.choice(people + orgs)
            r = client.post(
                f"/v1/letters/{slug}/signatures", json={"actor_id": actor, "signed_on": _day(rng, 10)}
            )
            if r.status_code == 201:
                signed.append((slug, actor))
        elif op == 3 and signed:
            slug, actor = rng.choice(signed)
            client.delete(f"/v1/letters/{slug}/signatures/{actor}?on={_day(rng)}")
        elif op == 4 and signed:
            slug, actor = rng.choice(signed)
            body = rng.choice([{"withdrawn_on": None}, {"signed_on": _day(rng, 10)}, {"capacity": "MP"}])
            client.patch(f"/v1/letters/{slug}/signatures/{actor}", json=body)
        elif op == 5:
            person = rng.choice(people)
            start = _day(rng, 15)
            end = rng.choice(
                [None, (date.fromisoformat(start) + timedelta(days=rng.randrange(1, 20))).isoformat()]
            )
            r = client.post(
                f"/v1/actors/{person}/memberships",
                json={
                    "body": rng.choice(["house", "senate"]),
                    "party": rng.choice(["red", "blue", "green", None]),
                    "start_date": start,
                    "end_date": end,
                },
            )
            memberships[person].append(r.json()["id"])
        elif op == 6:
            person = rng.choice(people)
            if memberships[person]:
                mid = rng.choice(memberships[person])
                if rng.random() < 0.3:
                    admin.delete(f"/v1/actors/{person}/memberships/{mid}")
                    memberships[person].remove(mid)
                else:
                    client.patch(
                        f"/v1/actors/{person}/memberships/{mid}",
                        json={"party": rng.choice(["red", "blue", None]), "start_date": _day(rng, 12)},
                    )
        elif op == 8 and signed:  # a signature moved to another actor (refused if that one signed)
            slug, actor = rng.choice(signed)
            other = rng.choice(people + orgs)
            r = client.patch(f"/v1/letters/{slug}/signatures/{actor}", json={"actor_id": other})
            if r.status_code == 200 and other != actor:
                signed.remove((slug, actor))
                signed.append((slug, other))
        elif op == 9 and signed:  # a mistake retracted
            slug, actor = rng.choice(signed)
            r = client.post(f"/v1/letters/{slug}/signatures/{actor}/retract", json={"reason": "wrong list"})
            assert r.status_code == 200, r.text
            signed.remove((slug, actor))
        elif op == 10:  # two actors of a kind merged
            group = rng.choice([people, orgs])
            if len(group) > 2:
                keep, other = rng.sample(group, 2)
                r = client.post(f"/v1/actors/{keep}/merge", json={"merge": [other]})
                assert r.status_code == 200, r.text
                group.remove(other)
                memberships.pop(other, None)
                signed = sorted({(slug, keep if actor == other else actor) for slug, actor in signed})
                if keep in memberships:
                    memberships[keep] = [
                        m["id"] for m in client.get(f"/v1/actors/{keep}/memberships").json()["items"]
                    ]
        else:
            org = rng.choice(orgs)
            client.patch(
                f"/v1/actors/{org}",
                json={
                    "country": rng.choice(["GB", "DE", None]),
                    "org_type": rng.choice(["ngo", "union", None]),
                },
            )

    kept = rollups.snapshot(db)
    assert kept, "the scenario made signatures"
    assert pairs.snapshot(db) == pairs.recomputed(db)
    rollups.rebuild(db)
    assert rollups.snapshot(db) == kept


def test_writes_bump_the_version_of_the_letters_they_change(client: TestClient, db: Session) -> None:
    client.post("/v1/bodies", json={"slug": "hall", "name": "Hall"})
    client.post("/v1/letters", json={"slug": "vers", "title": "V", "published_on": "2020-09-01"})
    client.post("/v1/letters", json={"slug": "other", "title": "O", "published_on": "2020-09-01"})
    person = client.post("/v1/actors", json={"kind": "person", "name": "Vee"}).json()["id"]

    def version(slug: str) -> int:
        db.expire_all()
        return int(db.scalar(select(Letter.version).where(Letter.slug == slug)) or 0)

    start, other = version("vers"), version("other")
    client.post("/v1/letters/vers/signatures", json={"actor_id": person})
    after_sign = version("vers")
    client.post(f"/v1/actors/{person}/memberships", json={"body": "hall", "start_date": "2019-01-01"})
    after_seat = version("vers")
    assert start < after_sign < after_seat
    assert version("other") == other  # a letter the actor did not sign is untouched


def test_cli_rebuild_reports_drift(migrated_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from app.cli import cli
    from app.config import Settings, get_settings
    from app.db.database import Database, session_scope
    from app.db.engine import create_engine_for
    from app.models import LetterRollup
    from tests import builders

    database = Database(create_engine_for(Settings(database_url=migrated_database_url)))
    with session_scope(database.write_sessions) as session:
        letter = builders.letter(session, "drift")
        for i in range(3):
            builders.sign(session, letter, builders.actor(session, f"A{i}", kind="organisation"))
        rollups.rebuild(session)
        session.execute(update(LetterRollup).values(new=LetterRollup.new + 5))  # damage them
    database.dispose()
    monkeypatch.setenv("DATABASE_URL", migrated_database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["db", "rebuild-rollups"])
        again = CliRunner().invoke(cli, ["db", "rebuild-rollups"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0 and "rebuilt 1 rollup rows; 2 differed" in result.output
    assert "; 0 differed" in again.output


def test_imports_and_loads_keep_the_rollups(client: TestClient, db: Session) -> None:
    client.post("/v1/letters", json={"slug": "imported", "title": "I", "published_on": "2020-09-09"})
    csv = "name,kind,country,signed_on\nAlpha Trust,organisation,GB,2020-09-09\nBeta League,organisation,FR,2020-09-10\n"
    r = client.post(
        "/v1/letters/imported/signatures/import", content=csv, headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    counts = client.get("/v1/letters/imported/counts").json()
    assert counts["recorded"] == 2 and {e["key"] for e in counts["by_country"]} == {"GB", "FR"}
    kept = rollups.snapshot(db)
    rollups.rebuild(db)
    assert rollups.snapshot(db) == kept


@pytest.mark.parametrize("exclusive", [False, True])
def test_a_rebuild_counts_each_signature_under_the_membership_the_writes_do(
    db: Session, exclusive: bool
) -> None:
    """The rebuild finds each signature's membership by anti-joins, the writes by a window over
    a join: the same one, in every case the rule has (valid that day, the latest start, then the
    lowest id; none valid; ended the day before; starting the day after). With `exclusive` the
    table's keys are dropped and made again (PostgreSQL): they must be there afterwards."""
    from sqlalchemy import text

    from app.models import LetterRollup
    from tests import builders as b

    house, senate = b.body(db, "rb-house"), b.body(db, "rb-senate")
    red, blue = b.party(db, "rb-red"), b.party(db, "rb-blue")
    letter = b.letter(db, "rb-letter")
    day = date(2020, 9, 9)
    cases: dict[str, list[tuple[Any, Any, date, date | None]]] = {
        "one seat": [(house, red, day - timedelta(days=30), None)],
        "the later start": [
            (house, red, day - timedelta(days=30), None),
            (senate, blue, day - timedelta(days=5), None),
        ],
        "same start, lower id": [
            (senate, blue, day - timedelta(days=5), None),
            (house, red, day - timedelta(days=5), None),
        ],
        "ended the day before": [(house, red, day - timedelta(days=30), day - timedelta(days=1))],
        "ends that day": [
            (house, blue, day - timedelta(days=30), day),
            (senate, red, day - timedelta(days=60), None),
        ],
        "starts the day after": [(house, red, day + timedelta(days=1), None)],
        "no seat": [],
    }
    for name, seats in cases.items():
        person = b.actor(db, f"RB {name}", kind="person", country="GB")
        for body, party, start, end in seats:
            b.membership(db, person, body, party, start, end)
        b.sign(db, letter, person, day, withdrawn_on=day + timedelta(days=3) if "seat" in name else None)
    kept = rollups.snapshot(db)
    assert {(r[5], r[6]) for r in kept if r[-2]} == {
        (house.id, red.id),
        (senate.id, blue.id),
        (house.id, blue.id),
        (0, 0),
    }
    connection = db.connection()
    if connection.dialect.name == "postgresql":
        keys = "select conname, pg_get_constraintdef(oid) from pg_constraint where conrelid = 'letter_rollups'::regclass order by 1"
        before = connection.execute(text(keys)).all()
    rollups.rebuild(db, exclusive=exclusive)
    assert rollups.snapshot(db) == kept
    assert db.scalar(select(func.sum(LetterRollup.new))) == len(cases)
    if connection.dialect.name == "postgresql":
        assert connection.execute(text(keys)).all() == before and len(before) == 2
