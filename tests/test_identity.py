"""One actor per identity (SPEC §6): duplicates refused or reused on every write path, matching
that explains itself, aliases, merges with redirects, moves, retractions and the review queue."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import rollups
from app.models import Actor, ChangeRecord, Membership, Recipient, Signature
from app.names import variant_key
from tests import builders as b


def csv_import(client: TestClient, slug: str, text: str, **params: Any) -> dict[str, Any]:
    r = client.post(
        f"/v1/letters/{slug}/signatures/import",
        content=text.encode(),
        params=params,
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def actor_count(db: Session) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Actor)) or 0


def recorded(client: TestClient, slug: str) -> int:
    return int(client.get(f"/v1/letters/{slug}/counts").json()["recorded"])


# --- one actor per identity on every write path ------------------------------------------------


def test_an_inline_actor_given_twice_is_one_actor(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    b.letter(db, "l2")
    db.commit()
    inline = {"actor": {"kind": "organisation", "name": "Example Group"}}
    first = client.post("/v1/letters/l1/signatures", json=inline)
    assert first.status_code == 201, first.text
    assert first.json()["actor_match"] == "created"
    before = actor_count(db)
    again = client.post("/v1/letters/l1/signatures", json=inline)
    assert again.status_code == 409  # the same actor has signed already: no second actor, no second count
    assert actor_count(db) == before and recorded(client, "l1") == 1
    # Written differently ("The", case, punctuation): the same actor, on another letter.
    other = client.post(
        "/v1/letters/l2/signatures", json={"actor": {"kind": "organisation", "name": "the EXAMPLE group."}}
    )
    assert other.status_code == 201
    assert other.json()["actor_match"] == "existing"
    assert other.json()["actor"]["id"] == first.json()["actor"]["id"]
    assert actor_count(db) == before
    # A person of that name is another actor.
    person = client.post(
        "/v1/letters/l2/signatures", json={"actor": {"kind": "person", "name": "Example Group"}}
    )
    assert person.json()["actor_match"] == "created"


def test_new_true_insists_on_a_second_actor(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    one = b.actor(db, "Friends of the Earth", kind="organisation")
    db.commit()
    r = client.post(
        "/v1/letters/l1/signatures",
        json={"actor": {"kind": "organisation", "name": "Friends of the Earth", "new": True}},
    )
    assert r.status_code == 201 and r.json()["actor_match"] == "created"
    assert r.json()["actor"]["id"] != one.id
    # Now two share the name: an inline actor by that name must be named by id.
    again = client.post(
        "/v1/letters/l1/signatures", json={"actor": {"kind": "organisation", "name": "Friends of the Earth"}}
    )
    assert again.status_code == 409
    assert {c["id"] for c in again.json()["candidates"]} == {one.id, r.json()["actor"]["id"]}


@pytest.mark.parametrize(
    ("existing", "given", "duplicate"),
    [
        ({"name": "Amnesty International"}, {"name": "Amnesty International"}, True),
        ({"name": "Amnesty International"}, {"name": "THE amnesty international"}, True),
        ({"name": "Amnesty International", "country": "GB"}, {"name": "Amnesty International"}, True),
        (
            {"name": "Amnesty International", "country": "GB"},
            {"name": "Amnesty International", "country": "GB"},
            True,
        ),
        # Two organisations of the same name in different countries are two.
        (
            {"name": "Amnesty International", "country": "GB"},
            {"name": "Amnesty International", "country": "FR"},
            False,
        ),
        ({"name": "Amnesty International"}, {"name": "Amnesty International UK"}, False),
        ({"name": "Amnesty International", "aliases": ["AI"]}, {"name": "AI"}, True),
    ],
)
def test_post_actor_refuses_a_duplicate_naming_the_existing_one(
    client: TestClient, existing: dict[str, Any], given: dict[str, Any], duplicate: bool
) -> None:
    first = client.post("/v1/actors", json={"kind": "organisation", **existing})
    assert first.status_code == 201, first.text
    r = client.post("/v1/actors", json={"kind": "organisation", **given})
    if not duplicate:
        assert r.status_code == 201, r.text
        return
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["actor_id"] == first.json()["id"]
    assert problem["actor"]["name"] == existing["name"]
    assert str(first.json()["id"]) in problem["detail"]
    insisted = client.post("/v1/actors", json={"kind": "organisation", **given, "new": True})
    assert insisted.status_code == 201


def test_an_identifier_names_one_actor_on_every_path(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    made = client.post(
        "/v1/actors",
        json={
            "kind": "person",
            "name": "Ed Davey",
            "identifiers": [{"scheme": "ukparliament", "value": "188"}],
        },
    ).json()
    dup = client.post(
        "/v1/actors",
        json={
            "kind": "person",
            "name": "Someone",
            "identifiers": [{"scheme": "ukparliament", "value": "188"}],
        },
    )
    assert dup.status_code == 409 and dup.json()["actor_id"] == made["id"]
    # new: true does not make identifiers less unique.
    forced = client.post(
        "/v1/actors",
        json={
            "kind": "person",
            "name": "Someone",
            "new": True,
            "identifiers": [{"scheme": "ukparliament", "value": "188"}],
        },
    )
    assert forced.status_code == 409
    inline = client.post(
        "/v1/letters/l1/signatures",
        json={
            "actor": {
                "kind": "person",
                "name": "Rt Hon Sir Edward Davey MP",
                "identifiers": [{"scheme": "ukparliament", "value": "188"}],
            }
        },
    )
    assert inline.status_code == 201 and inline.json()["actor_match"] == "existing"
    assert inline.json()["actor"]["id"] == made["id"]


def test_an_inline_recipient_reuses_the_actor(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    b.letter(db, "l2")
    db.commit()
    body = {"actor": {"kind": "person", "name": "Liu Xiaoming"}, "role": "to"}
    one = client.post("/v1/letters/l1/recipients", json=body)
    two = client.post("/v1/letters/l2/recipients", json=body)
    assert one.json()["actor_match"] == "created" and two.json()["actor_match"] == "existing"
    assert one.json()["actor"]["id"] == two.json()["actor"]["id"]


def test_renaming_into_another_actor_is_refused(client: TestClient, db: Session) -> None:
    b.actor(db, "Amnesty International", kind="organisation")
    other = b.actor(db, "Amnesty Intl", kind="organisation")
    db.commit()
    r = client.patch(f"/v1/actors/{other.id}", json={"name": "Amnesty International"})
    assert r.status_code == 409 and "merge" in r.json()["detail"]


# --- aliases ------------------------------------------------------------------------------------


def test_aliases_are_kept_searched_and_matched(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    made = client.post(
        "/v1/actors",
        json={
            "kind": "organisation",
            "name": "Human Rights Watch",
            "aliases": ["HRW", "Americas Watch", "HRW"],
        },
    )
    assert made.status_code == 201
    actor = made.json()
    assert actor["aliases"] == ["HRW", "Americas Watch"]
    found = client.get("/v1/actors", params={"q": "americas watch"}).json()["items"]
    assert [a["id"] for a in found] == [actor["id"]]
    report = csv_import(client, "l1", "name\nHRW\n")
    row = report["rows"][0]
    assert row["status"] == "matched" and row["actor"]["id"] == actor["id"] and row["method"] == "alias"
    # An import never adds an alias by itself.
    assert client.get(f"/v1/actors/{actor['id']}").json()["aliases"] == ["HRW", "Americas Watch"]
    edited = client.patch(f"/v1/actors/{actor['id']}", json={"aliases": ["Helsinki Watch"]})
    assert edited.json()["aliases"] == ["Helsinki Watch"]
    assert client.get("/v1/actors", params={"q": "americas"}).json()["items"] == []


# --- matching that explains itself ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Amnesty International UK",
        "Amnesty International USA",
        "Amnesty International Deutschland",
        "Amnesty International Section Française",
        "Amnesty International Youth",
        "Amnesty International Chapter 12",
    ],
)
def test_a_distinguishing_word_is_never_a_fuzzy_match(client: TestClient, db: Session, name: str) -> None:
    b.letter(db, "l1")
    amnesty = b.actor(db, "Amnesty International", kind="organisation")
    db.commit()
    row = csv_import(client, "l1", f"name\n{name}\n")["rows"][0]
    assert row["status"] in ("ambiguous", "created"), row
    assert row.get("actor", {}).get("id") != amnesty.id
    if row["status"] == "ambiguous":
        assert [c["id"] for c in row["candidates"]] == [amnesty.id]


def test_the_issues_examples_of_names(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    amnesty = b.actor(db, "Amnesty International", kind="organisation")
    davey = b.actor(db, "Sir Edward Davey", kind="person")
    womens = b.actor(db, "Women's Aid and Refuge Network", kind="organisation")
    db.commit()
    report = csv_import(
        client,
        "l1",
        "name,kind\n"
        "Amnesty International UK,organisation\n"
        "Sir Ed Davey,person\n"
        "Amnesty Intl,organisation\n"
        "Women's Aid & Refuge Network,organisation\n"
        "Amnesty Internationl,organisation\n",
        dry_run="true",
    )
    rows = report["rows"]
    assert rows[0]["status"] == "ambiguous" and rows[0]["candidates"][0]["id"] == amnesty.id
    assert 0.92 <= rows[0]["candidates"][0]["score"] < 1
    assert rows[1]["status"] == "created"
    assert rows[1]["possible_matches"][0]["id"] == davey.id
    assert rows[2]["status"] == "created"
    assert rows[2]["possible_matches"][0] == {
        "id": amnesty.id,
        "name": "Amnesty International",
        "score": rows[2]["possible_matches"][0]["score"],
    }
    assert rows[3]["status"] == "matched" and rows[3]["actor"]["id"] == womens.id  # "&" is "and"
    assert rows[4]["status"] == "matched" and rows[4]["method"] == "fuzzy" and rows[4]["score"] >= 0.92


def test_seat_decides_between_namesakes(client: TestClient, db: Session) -> None:
    b.letter(db, "l1", published_on=date(2020, 9, 9))
    commons, lords = b.body(db, "commons"), b.body(db, "lords")
    labour = b.party(db, "labour")
    mp = b.actor(db, "John Smith", kind="person")
    peer = b.actor(db, "Lord John Smith", kind="person")
    b.membership(db, mp, commons, labour, date(2019, 12, 12))
    b.membership(db, peer, lords, None, date(2010, 1, 1))
    db.commit()
    row = csv_import(client, "l1", "name,kind,body\nJohn Smith,person,lords\n")["rows"][0]
    assert row["status"] == "matched" and row["actor"]["id"] == peer.id and row["method"] == "seat"
    without = csv_import(client, "l1", "name,kind\nJohn Smith,person\n", dry_run="true")["rows"][0]
    assert without["status"] == "ambiguous"


def test_mixed_scripts_match_the_latin_name(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    amnesty = b.actor(db, "Amnesty International", kind="organisation")
    db.commit()
    # A Cyrillic "А" and "а" among the Latin letters.
    row = csv_import(client, "l1", "name\n\u0410mnesty Internation\u0430l\n")["rows"][0]
    assert row["status"] == "matched" and row["actor"]["id"] == amnesty.id
    assert "mixes scripts" in row["warning"]
    r = client.post("/v1/actors", json={"kind": "organisation", "name": "\u0410mnesty International"})
    assert r.status_code == 409 and r.json()["actor_id"] == amnesty.id


def test_an_organisation_of_another_country_is_not_matched_by_name(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    gb = b.actor(db, "Save the Children", kind="organisation", country="GB")
    db.commit()
    row = csv_import(client, "l1", "name,country\nSave the Children,FR\n", dry_run="true")["rows"][0]
    assert row["status"] == "created"
    assert [c["id"] for c in row["possible_matches"]] == [gb.id]
    same = csv_import(client, "l1", "name,country\nSave the Children,GB\n", dry_run="true")["rows"][0]
    assert same["status"] == "matched" and same["actor"]["id"] == gb.id


# --- labelled name variants: precision and recall of the matcher -------------------------------

VARIANTS = Path(__file__).parent / "data" / "name_variants.csv"


def test_matching_precision_and_recall_on_labelled_variants(client: TestClient, db: Session) -> None:
    """Real organisation and parliamentarian names with the variants people write (abbreviations,
    translations, typos, sections of one NGO), each labelled same or different. Every row is
    imported (dry run) against a registry holding only its reference name; a `matched` row is a
    match, a row with the reference among its candidates or possible matches is a hint. The
    floors are the figures docs/identity.md reports: a change that makes matching worse fails here."""
    import csv

    with VARIANTS.open(encoding="utf-8") as f:
        pairs = list(csv.DictReader(f))
    assert len(pairs) >= 100
    b.letter(db, "l1")
    db.commit()
    tally = {"tp": 0, "fp": 0, "fn": 0, "tn": 0, "hinted": 0, "same": 0}
    missed: list[str] = []
    for pair in pairs:
        ref = b.actor(db, pair["reference"], kind=pair["kind"])
        row = csv_import(client, "l1", f'name,kind\n"{pair["variant"]}",{pair["kind"]}\n', dry_run="true")
        row = row["rows"][0]
        db.delete(ref)  # the registry holds only the next pair's reference
        db.commit()
        same = pair["same"] == "yes"
        matched = row["status"] == "matched" and row["actor"]["id"] == ref.id
        named = {c["id"] for c in row.get("candidates", []) + row.get("possible_matches", [])}
        tally["same"] += same
        if same and not (matched or ref.id in named):
            missed.append(f"{pair['reference']} <- {pair['variant']}: {row}")
        if same:
            tally["tp" if matched else "fn"] += 1
            tally["hinted"] += matched or ref.id in named
        else:
            tally["fp" if matched else "tn"] += 1
    precision = tally["tp"] / max(tally["tp"] + tally["fp"], 1)
    recall = tally["tp"] / max(tally["same"], 1)
    found = tally["hinted"] / max(tally["same"], 1)
    print(json.dumps({**tally, "precision": precision, "recall": recall, "recall_with_hints": found}))
    print("\n".join(missed))
    assert precision == 1.0  # never a silent merge of two actors
    assert recall >= 0.55
    assert found >= 0.85


# --- merge ---------------------------------------------------------------------------------------


def test_merge_folds_everything_into_the_kept_actor(client: TestClient, db: Session) -> None:
    l1 = b.letter(db, "l1", published_on=date(2020, 9, 9))
    l2 = b.letter(db, "l2", published_on=date(2020, 9, 9))
    commons = b.body(db, "commons")
    keep = b.actor(db, "Sir Edward Davey", kind="person", identifiers={"ukparliament": "188"})
    dup = b.actor(db, "Ed Davey", kind="person", identifiers={"wikidata": "Q1285046"}, country="GB")
    b.membership(db, keep, commons, None, date(2017, 6, 8))
    b.membership(db, dup, commons, None, date(2017, 6, 8))  # the same seat twice
    b.sign(db, l1, keep, date(2020, 9, 10))
    early = b.sign(db, l1, dup, date(2020, 9, 9), capacity="MP for Kingston")
    b.sign(db, l2, dup, date(2020, 9, 11), withdrawn_on=date(2020, 9, 20))
    db.add(Recipient(letter_id=l2.id, actor_id=dup.id, role="cc"))
    db.commit()
    before = {slug: client.get(f"/v1/letters/{slug}/counts").json() for slug in ("l1", "l2")}
    etag = client.get("/v1/letters/l1/counts").headers["etag"]
    keep_id, dup_id, early_id, l1_id, l2_id = keep.id, dup.id, early.id, l1.id, l2.id

    r = client.post(f"/v1/actors/{keep_id}/merge", json={"merge": [dup_id]})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["merged"] == [dup_id] and doc["signatures_folded"] == 1
    actor = doc["actor"]
    assert {f"{i['scheme']}:{i['value']}" for i in actor["identifiers"]} == {
        "ukparliament:188",
        "wikidata:Q1285046",
    }
    assert actor["aliases"] == ["Ed Davey"] and actor["country"] == "GB"

    db.expire_all()
    sigs = {s.letter_id: s for s in db.scalars(select(Signature).where(Signature.actor_id == keep_id))}
    assert set(sigs) == {l1_id, l2_id}
    assert sigs[l1_id].id == early_id and sigs[l1_id].signed_on == date(
        2020, 9, 9
    )  # the earliest, with its evidence
    assert sigs[l1_id].capacity == "MP for Kingston"
    assert sigs[l2_id].withdrawn_on == date(2020, 9, 20)
    assert db.scalar(select(func.count()).select_from(Membership).where(Membership.actor_id == keep_id)) == 1
    assert db.scalar(select(Recipient.actor_id).where(Recipient.letter_id == l2_id)) == keep_id
    assert db.get(Actor, dup_id) is None

    after = {slug: client.get(f"/v1/letters/{slug}/counts").json() for slug in ("l1", "l2")}
    assert after["l1"]["recorded"] == before["l1"]["recorded"] - 1  # one actor now, signed once
    assert after["l2"] == before["l2"]
    assert client.get("/v1/letters/l1/counts").headers["etag"] != etag
    kept = rollups.snapshot(db)
    rollups.rebuild(db)
    assert rollups.snapshot(db) == kept

    # The old id redirects; its subresources too; an import naming it resolves.
    old = client.get(f"/v1/actors/{dup_id}", follow_redirects=False)
    assert old.status_code == 301 and old.headers["location"] == f"/v1/actors/{keep_id}"
    sub = client.get(f"/v1/actors/{dup_id}/signatures?limit=5", follow_redirects=False)
    assert sub.status_code == 301 and sub.headers["location"] == f"/v1/actors/{keep_id}/signatures?limit=5"
    assert client.get(f"/v1/actors/{dup_id}").json()["id"] == keep_id
    b.letter(db, "l3")
    db.commit()
    row = csv_import(client, "l3", f"actor_id,name,kind\n{dup_id},Ed Davey,person\n")["rows"][0]
    assert row["status"] == "matched" and row["actor"]["id"] == keep_id and row["method"] == "actor_id"
    moved = client.post("/v1/letters/l3/signatures", json={"actor_id": dup_id})
    assert moved.status_code == 409  # it is the kept actor, who signed l3 just now

    history = client.get(f"/v1/actors/{keep_id}/history").json()["items"]
    merge = [h for h in history if h["action"] == "merge"]
    assert len(merge) == 1 and merge[0]["after"]["merged_ids"] == [dup_id]
    assert merge[0]["before"]["merged"][0]["name"] == "Ed Davey"
    assert merge[0]["before"]["folded_signatures"][0]["signed_on"] == "2020-09-10"


def test_merge_refusals(client: TestClient, db: Session) -> None:
    person = b.actor(db, "A Person", kind="person", identifiers={"ukparliament": "1"})
    org = b.actor(db, "An Organisation", kind="organisation")
    other = b.actor(db, "Another Person", kind="person", identifiers={"ukparliament": "2"})
    db.commit()
    assert client.post(f"/v1/actors/{person.id}/merge", json={"merge": [org.id]}).status_code == 409
    clash = client.post(f"/v1/actors/{person.id}/merge", json={"merge": [other.id]})
    assert clash.status_code == 409 and "ukparliament" in clash.json()["detail"]
    assert client.post(f"/v1/actors/{person.id}/merge", json={"merge": [person.id]}).status_code == 422
    assert client.post(f"/v1/actors/{person.id}/merge", json={"merge": [999999]}).status_code == 422
    assert client.post("/v1/actors/999999/merge", json={"merge": [person.id]}).status_code == 404
    assert client.post(f"/v1/actors/{person.id}/merge", json={"merge": []}).status_code == 422
    forced = client.post(f"/v1/actors/{person.id}/merge", json={"merge": [other.id], "force": True})
    assert forced.status_code == 200
    gone = client.post(f"/v1/actors/{other.id}/merge", json={"merge": [person.id]}, follow_redirects=False)
    assert gone.status_code == 308 and gone.headers["location"] == f"/v1/actors/{person.id}/merge"


def test_merge_needs_a_write_key(anon: TestClient, db: Session) -> None:
    one, two = b.actor(db, "One", kind="person"), b.actor(db, "Two", kind="person")
    db.commit()
    assert anon.post(f"/v1/actors/{one.id}/merge", json={"merge": [two.id]}).status_code == 401


def test_cli_merges_actors(migrated_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from app.cli import cli
    from app.config import Settings, get_settings
    from app.db.engine import create_engine_for

    engine = create_engine_for(Settings(database_url=migrated_database_url))
    try:
        with Session(engine) as s:
            l1 = b.letter(s, "l1")
            keep, one, two = (b.actor(s, n, kind="organisation") for n in ("Oxfam", "Oxfam GB", "OXFAM Intl"))
            b.sign(s, l1, one)
            ids = keep.id, one.id, two.id
            s.commit()
        monkeypatch.setenv("DATABASE_URL", migrated_database_url)
        get_settings.cache_clear()
        result = CliRunner().invoke(cli, ["actors", "merge", str(ids[0]), str(ids[1]), str(ids[2])])
        assert result.exit_code == 0, result.output
        assert f"merged {ids[1]}, {ids[2]} into {ids[0]}" in result.output
        bad = CliRunner().invoke(cli, ["actors", "merge", str(ids[0]), str(ids[1])])
        assert bad.exit_code == 1 and "merged into" in bad.output
        with Session(engine) as s:
            assert s.scalar(select(Signature.actor_id)) == ids[0]
            assert s.scalar(select(ChangeRecord.key_name).where(ChangeRecord.action == "merge")) == "cli"
    finally:
        get_settings.cache_clear()
        engine.dispose()


# --- move and retract ----------------------------------------------------------------------------


def test_a_signature_moves_to_the_right_actor(client: TestClient, db: Session) -> None:
    l1 = b.letter(db, "l1")
    wrong = b.actor(db, "Amnesty International", kind="organisation", country="GB")
    right = b.actor(db, "Amnesty International UK", kind="organisation", country="FR")
    taken = b.actor(db, "Taken", kind="organisation")
    b.sign(db, l1, wrong)
    b.sign(db, l1, taken)
    db.commit()
    r = client.patch(f"/v1/letters/l1/signatures/{wrong.id}", json={"actor_id": right.id})
    assert r.status_code == 200, r.text
    assert r.json()["actor"]["id"] == right.id
    counts = client.get("/v1/letters/l1/counts").json()
    assert {e["key"]: e["count"] for e in counts["by_country"]} == {"FR": 1, None: 1}
    assert client.get(f"/v1/letters/l1/signatures/{wrong.id}").status_code == 404
    assert (
        client.patch(f"/v1/letters/l1/signatures/{right.id}", json={"actor_id": taken.id}).status_code == 409
    )
    assert client.patch(f"/v1/letters/l1/signatures/{right.id}", json={"actor_id": 999999}).status_code == 422
    records = db.scalars(select(ChangeRecord).where(ChangeRecord.action == "move")).all()
    assert len(records) == 1 and records[0].after and records[0].after["moved_to"] == right.id


def test_a_retraction_is_as_if_the_signature_never_was(
    client: TestClient, admin: TestClient, db: Session
) -> None:
    l1 = b.letter(db, "l1", published_on=date(2020, 9, 9))
    keep = b.actor(db, "Kept", kind="organisation")
    mistake = b.actor(db, "Mistake", kind="organisation")
    b.sign(db, l1, keep, date(2020, 9, 9))
    b.sign(db, l1, mistake, date(2020, 9, 12), withdrawn_on=date(2020, 9, 14))
    db.commit()
    no_reason = client.post(f"/v1/letters/l1/signatures/{mistake.id}/retract", json={})
    assert no_reason.status_code == 422
    assert (
        client.post(f"/v1/letters/l1/signatures/{mistake.id}/retract", json={"reason": "  "}).status_code
        == 422
    )
    r = client.post(f"/v1/letters/l1/signatures/{mistake.id}/retract", json={"reason": "wrong list pasted"})
    assert r.status_code == 200, r.text
    assert r.json()["reason"] == "wrong list pasted" and r.json()["signature"]["signed_on"] == "2020-09-12"
    counts = client.get("/v1/letters/l1/counts").json()
    assert (counts["recorded"], counts["withdrawn"]) == (1, 0)
    timeline = client.get("/v1/letters/l1/timeline").json()["points"]
    assert [(p["date"], p["new"], p["withdrawn"]) for p in timeline] == [("2020-09-09", 1, 0)]
    listed = client.get("/v1/letters/l1/retractions").json()["items"]
    assert [(i["actor_id"], i["reason"]) for i in listed] == [(mistake.id, "wrong list pasted")]
    assert listed[0]["retracted_by"].startswith("test-write")
    assert (
        client.post(f"/v1/letters/l1/signatures/{mistake.id}/retract", json={"reason": "x"}).status_code
        == 404
    )
    # Nothing left to the actor: an admin may delete it.
    assert admin.delete(f"/v1/actors/{mistake.id}").status_code == 204
    kept = rollups.snapshot(db)
    rollups.rebuild(db)
    assert rollups.snapshot(db) == kept


# --- the review queue ----------------------------------------------------------------------------


def test_review_queue_pairs_and_decisions(client: TestClient, db: Session) -> None:
    amnesty = b.actor(
        db, "Amnesty International", kind="organisation", identifiers={"website": "https://www.amnesty.org/"}
    )
    intl = b.actor(db, "Amnesty Intl", kind="organisation", identifiers={"website": "amnesty.org"})
    uk = b.actor(db, "Amnesty International UK", kind="organisation")
    davey = b.actor(db, "Sir Edward Davey", kind="person")
    ed = b.actor(db, "Ed Davey", kind="person")
    fr = b.actor(db, "Médecins Sans Frontières", kind="organisation", country="FR")
    ch = b.actor(db, "Medecins Sans Frontieres", kind="organisation", country="CH")
    typo = b.actor(db, "Human Rights Watch", kind="organisation")
    typo2 = b.actor(db, "Human Rigths Watch", kind="organisation")
    db.commit()
    items = client.get("/v1/review/possible-duplicates", params={"limit": 100}).json()["items"]
    pairs = {tuple(sorted(a["id"] for a in i["actors"])): i for i in items}
    assert tuple(sorted((amnesty.id, intl.id))) in pairs
    assert any("website" in e for e in pairs[tuple(sorted((amnesty.id, intl.id)))]["evidence"])
    assert tuple(sorted((davey.id, ed.id))) in pairs
    assert tuple(sorted((typo.id, typo2.id))) in pairs
    assert tuple(sorted((amnesty.id, uk.id))) not in pairs  # a country word tells them apart
    assert tuple(sorted((fr.id, ch.id))) not in pairs  # different countries
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)

    # Paged, stable.
    paged, params = [], {"limit": 1}
    while True:
        doc = client.get("/v1/review/possible-duplicates", params=params).json()
        paged += [tuple(sorted(a["id"] for a in i["actors"])) for i in doc["items"]]
        if not doc["next_cursor"]:
            break
        params["cursor"] = doc["next_cursor"]
    assert paged == [tuple(sorted(a["id"] for a in i["actors"])) for i in items]

    r = client.post(
        "/v1/review/possible-duplicates", json={"actors": [davey.id, ed.id], "decision": "distinct"}
    )
    assert r.status_code == 200
    r = client.post(
        "/v1/review/possible-duplicates",
        json={"actors": [amnesty.id, intl.id], "decision": "merge", "keep": amnesty.id},
    )
    assert r.status_code == 200 and r.json()["actor"]["id"] == amnesty.id
    left = client.get("/v1/review/possible-duplicates", params={"limit": 100}).json()["items"]
    left_pairs = {tuple(sorted(a["id"] for a in i["actors"])) for i in left}
    assert tuple(sorted((davey.id, ed.id))) not in left_pairs
    assert all(intl.id not in p for p in left_pairs)
    assert client.get(f"/v1/actors/{amnesty.id}").json()["aliases"] == ["Amnesty Intl"]


def test_every_two_holders_of_one_identifier_are_a_possible_pair(client: TestClient, db: Session) -> None:
    """Three actors with one website written three ways: three pairs, each with that evidence
    once; an identifier of another scheme with the same value pairs no one."""
    held = [
        b.actor(db, name, kind="organisation", identifiers={"website": site})
        for name, site in (
            ("Uyghur Human Rights Project", "https://uhrp.org/"),
            ("UHRP", "http://www.uhrp.org"),
            ("Uyghur HR Project", "uhrp.org/"),
        )
    ]
    b.actor(db, "Someone Else", kind="organisation", identifiers={"wikidata": "uhrp.org"})
    db.commit()
    items = client.get("/v1/review/possible-duplicates", params={"limit": 100}).json()["items"]
    found = {
        tuple(sorted(a["id"] for a in i["actors"])): [e for e in i["evidence"] if e.startswith("identifier")]
        for i in items
    }
    ids = sorted(a.id for a in held)
    wanted = {(ids[0], ids[1]), (ids[0], ids[2]), (ids[1], ids[2])}
    assert {pair for pair, evidence in found.items() if evidence} == wanted
    assert all(found[pair] == ["identifier website: uhrp.org"] for pair in wanted)


def test_the_demo_queue_is_clean(client: TestClient, db: Session) -> None:
    from app.demo.loader import load_demo

    load_demo(db)
    db.commit()
    items = client.get("/v1/review/possible-duplicates", params={"limit": 100}).json()["items"]
    assert items == []


def test_a_merged_id_is_never_given_to_a_new_actor(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    keep = b.actor(db, "Keep", kind="organisation")
    last = b.actor(db, "Last", kind="organisation")  # the highest id: SQLite would hand it out again
    db.commit()
    last_id = last.id
    assert client.post(f"/v1/actors/{keep.id}/merge", json={"merge": [last_id]}).status_code == 200
    made = client.post("/v1/actors", json={"kind": "organisation", "name": "Brand New"}).json()
    imported = csv_import(client, "l1", "name\nAnother New One\n")["rows"][0]["actor"]["id"]
    assert last_id not in (made["id"], imported)
    old = client.get(f"/v1/actors/{last_id}", follow_redirects=False)
    assert old.status_code == 301 and old.headers["location"] == f"/v1/actors/{keep.id}"


def test_a_merged_actors_page_and_analytics_redirect(client: TestClient, db: Session) -> None:
    keep, other = b.actor(db, "Keep Org", kind="organisation"), b.actor(db, "Other Org", kind="organisation")
    db.commit()
    keep_id, other_id = keep.id, other.id
    assert client.post(f"/v1/actors/{keep_id}/merge", json={"merge": [other_id]}).status_code == 200
    for path in (
        f"/actors/{other_id}",
        f"/v1/actors/{other_id}/co-signatories",
        f"/v1/actors/{other_id}/memberships",
    ):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 301, path
        assert r.headers["location"] == path.replace(str(other_id), str(keep_id))
    assert client.get("/v1/actors/999999", follow_redirects=False).status_code == 404


def test_parallel_imports_of_one_list_into_many_letters_make_each_actor_once(
    migrated_database_url: str,
) -> None:
    """Eight imports of the same 100 organisations into eight letters at once, each in its own
    transaction: the name locks serialise the making of each actor, so there is one of each
    and every letter counts 100."""
    from concurrent.futures import ThreadPoolExecutor

    from app.config import Settings
    from app.db.database import Database, session_scope
    from app.db.engine import create_engine_for
    from app.imports import service
    from app.imports.parsing import read_csv

    database = Database(create_engine_for(Settings(database_url=migrated_database_url)))
    try:
        with session_scope(database.write_sessions) as s:
            for i in range(8):
                b.letter(s, f"l{i}")
        data = "name\n" + "".join(f"Organisation number {i} for parallel lists\n" for i in range(100))

        def one(i: int) -> dict[str, Any]:
            with session_scope(database.write_sessions) as s:
                _h, rows = read_csv(data.encode())
                return service.import_signatures(s, "t", f"l{i}", rows, service.ImportOptions())

        with ThreadPoolExecutor(8) as pool:
            reports = list(pool.map(one, range(8)))
        assert sum(r["summary"]["created"] for r in reports) == 100
        assert all(r["summary"]["created"] + r["summary"]["matched"] == 100 for r in reports)
        with Session(database.engine) as s:
            assert s.scalar(select(func.count()).select_from(Actor)) == 100
            assert s.scalar(select(func.count()).select_from(Signature)) == 800
    finally:
        database.dispose()


def test_an_imported_actor_is_found_by_its_variant_key(client: TestClient, db: Session) -> None:
    """An actor a CSV import creates is kept under its variant key like one made through the
    API: a later import naming it by a short form offers it as a possible match, and the
    review queue pairs it with the actor that has the same key."""
    b.letter(db, "l1")
    b.letter(db, "l2")
    db.commit()
    first = csv_import(
        client, "l1", "name,kind\nSir Edward Davey,person\nAmnesty International,organisation\n"
    )
    davey, amnesty = (row["actor"]["id"] for row in first["rows"])
    stored = dict(db.execute(select(Actor.id, Actor.variant_key).where(Actor.id.in_([davey, amnesty]))).all())
    assert stored == {
        davey: variant_key("Sir Edward Davey", "person"),
        amnesty: variant_key("Amnesty International", "organisation"),
    }
    rows = csv_import(
        client, "l2", "name,kind\nSir Ed Davey,person\nAmnesty Intl,organisation\n", dry_run="true"
    )["rows"]
    assert [[m["id"] for m in row["possible_matches"]] for row in rows] == [[davey], [amnesty]]
