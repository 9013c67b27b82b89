"""`/v1/search`: one box over letters and actors."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app import fulltext
from app.models import Actor
from tests import builders as b


def test_search_finds_letters_and_actors(anon: TestClient, db: Session) -> None:
    letter = b.letter(
        db, "uighurs-letter", title="Letter on the treatment of Uighurs in Xinjiang", status="open"
    )
    b.letter(db, "other-letter", title="Climate letter")
    wuc = b.actor(db, "World Uyghur Congress", kind="organisation", identifiers={"wikidata": "Q1064296"})
    b.actor(db, "Uighur Human Rights Project", kind="organisation")
    r = anon.get("/v1/search", params={"q": "XINJIANG uighurs"})
    assert r.status_code == 200
    assert r.json() == {
        "letters": [
            {
                "slug": letter.slug,
                "title": "Letter on the treatment of Uighurs in Xinjiang",
                "published_on": "2020-09-09",
                "status": "open",
            }
        ],
        "actors": [],
    }
    found = anon.get("/v1/search", params={"q": "uyghur congress"}).json()
    assert found["letters"] == []
    assert [a["id"] for a in found["actors"]] == [wuc.id]
    assert found["actors"][0]["identifiers"] == [{"scheme": "wikidata", "value": "Q1064296"}]
    # (a transliteration finds the other spelling too)
    both = anon.get("/v1/search", params={"q": "uighur"}).json()
    assert len(both["letters"]) == 1 and sorted(a["name"] for a in both["actors"]) == [
        "Uighur Human Rights Project",
        "World Uyghur Congress",
    ]


def test_search_any_script_and_accents(anon: TestClient, db: Session) -> None:
    wuc = b.actor(db, "世界维吾尔代表大会", kind="organisation")
    uyghur = b.actor(db, "ئۇيغۇر ئاكادېمىيىسى", kind="organisation")
    letter = b.letter(db, "lettre", title="Lettre ouverte à l'ONU sur le Xinjiang")
    assert [a["id"] for a in anon.get("/v1/search", params={"q": "维吾尔"}).json()["actors"]] == [wuc.id]
    assert [a["id"] for a in anon.get("/v1/search", params={"q": "ئۇيغۇر"}).json()["actors"]] == [uyghur.id]
    assert [x["slug"] for x in anon.get("/v1/search", params={"q": "A L’onu"}).json()["letters"]] == [
        letter.slug
    ]


def test_search_limit(anon: TestClient, db: Session) -> None:
    for i in range(12):
        b.actor(db, f"Limited Actor {i}", kind="organisation")
        b.letter(db, f"limited-{i}", title=f"Limited letter {i}", published_on=date(2020, 1, 1 + i))
    default = anon.get("/v1/search", params={"q": "limited"}).json()
    assert len(default["letters"]) == 10 and len(default["actors"]) == 10
    assert default["letters"][0]["slug"] == "limited-11"  # newest first
    three = anon.get("/v1/search", params={"q": "limited", "limit": 3}).json()
    assert [a["name"] for a in three["actors"]] == ["Limited Actor 0", "Limited Actor 1", "Limited Actor 2"]
    assert len(anon.get("/v1/search", params={"q": "limited", "limit": 50}).json()["actors"]) == 12
    r = anon.get("/v1/search", params={"q": "limited", "limit": 51})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.limit"


def test_search_needs_words(anon: TestClient) -> None:
    for params in ({}, {"q": ""}, {"q": "  ..."}):
        r = anon.get("/v1/search", params=params)
        assert r.status_code == 422, params
        assert r.json()["errors"][0]["field"] == "query.q"
        assert r.headers["content-type"].startswith("application/problem+json")


# --- what a journalist types (the full-text index: app/fulltext.py) -----------------------------


def _letters(client: TestClient, q: str, **params: Any) -> list[str]:
    r = client.get("/v1/letters", params={"q": q, **params})
    assert r.status_code == 200, r.text
    return [item["slug"] for item in r.json()["items"]]


def _actors(client: TestClient, q: str) -> list[str]:
    r = client.get("/v1/actors", params={"q": q})
    assert r.status_code == 200, r.text
    return [item["name"] for item in r.json()["items"]]


def _search(client: TestClient, q: str) -> tuple[list[str], list[str]]:
    r = client.get("/v1/search", params={"q": q})
    assert r.status_code == 200, r.text
    return [x["slug"] for x in r.json()["letters"]], [a["name"] for a in r.json()["actors"]]


def test_a_campaign_name_finds_its_letters(anon: TestClient, db: Session) -> None:
    camp = b.campaign(db, "xinjiang-2020", "Xinjiang 2020")
    b.letter(db, "forced-labour", title="End forced labour in cotton supply chains", campaign=camp)
    b.letter(db, "climate", title="Climate letter")
    db.commit()
    assert _letters(anon, "xinjiang") == ["forced-labour"]
    assert _letters(anon, "Xinjiang cotton") == ["forced-labour"]  # words from campaign and title
    assert _search(anon, "XINJIANG")[0] == ["forced-labour"]
    assert _letters(anon, "east turkestan") == ["forced-labour"]  # another name of the region


def test_word_forms_and_transliterations(anon: TestClient, db: Session) -> None:
    b.letter(db, "chinese", title="Letter to the Chinese ambassador on Uighur detentions")
    b.letter(db, "policy", title="A policy for campaigns")
    b.actor(db, "Chinese Human Rights Defenders", kind="organisation")
    b.actor(db, "Uighur Human Rights Project", kind="organisation")
    b.actor(db, "World Uyghur Congress", kind="organisation", aliases=["WUC"])
    b.actor(db, "Ligue des droits de l'Homme", kind="organisation")
    db.commit()
    assert _letters(anon, "China") == ["chinese"]
    assert _actors(anon, "china") == ["Chinese Human Rights Defenders"]
    assert _letters(anon, "uighurs") == ["chinese"]
    assert _letters(anon, "Uyghur") == ["chinese"]
    assert sorted(_actors(anon, "uyghurs")) == ["Uighur Human Rights Project", "World Uyghur Congress"]
    assert sorted(_actors(anon, "Uigur")) == ["Uighur Human Rights Project", "World Uyghur Congress"]
    assert _actors(anon, "wuc") == ["World Uyghur Congress"]  # an alias
    # Stems of words no table lists: "policies" finds "policy", "campaigning" "campaigns".
    assert _letters(anon, "policies campaigning") == ["policy"]
    assert _actors(anon, "defender") == ["Chinese Human Rights Defenders"]
    assert _search(anon, "chinese uyghur") == (["chinese"], [])
    assert _search(anon, "droit l'homme") == ([], ["Ligue des droits de l'Homme"])
    # A word of one or two letters matches whole words only.
    assert _actors(anon, "hu") == []
    assert _letters(anon, "a policy") == ["policy"]


def test_accents_are_ignored_both_ways(anon: TestClient, db: Session) -> None:
    b.actor(db, "Société Générale des Œuvres", kind="organisation")
    b.actor(db, "Ürümqi Residents", kind="organisation")
    b.letter(db, "geneve", title="Appel de Genève")
    db.commit()
    assert _actors(anon, "societe generale") == ["Société Générale des Œuvres"]
    assert _actors(anon, "urumqi") == ["Ürümqi Residents"]
    assert _actors(anon, "ÜRÜMQI") == ["Ürümqi Residents"]
    assert _letters(anon, "geneve") == ["geneve"]
    assert _letters(anon, "Gënève appél") == ["geneve"]


def test_short_and_odd_queries(anon: TestClient, db: Session) -> None:
    b.letter(db, "un", title="Open letter to the UN Secretary-General")
    b.letter(db, "united", title="United we stand")
    db.commit()
    assert _letters(anon, "UN") == ["un"]  # whole word: not "United"
    assert _letters(anon, "100%") == []
    # Letters and digits of any kind never make a 500 (nor a syntax error of either index).
    for q in ("ʼ", "x²", "a_b", "Ⅻ", "٣", "ß", "ǅ", "ﬁ", "🙂 letter", '"un" OR *', "NEAR(a b)", "un:* & !x"):
        for path in ("/v1/letters", "/v1/actors", "/v1/search"):
            assert anon.get(path, params={"q": q}).status_code in (200, 422), (path, q)
    assert _letters(anon, '"UN" *') == ["un"]  # (quotes and operators are no syntax)
    for q in ("?!", "  ...", "’"):
        for path in ("/v1/letters", "/v1/actors", "/v1/search"):
            r = anon.get(path, params={"q": q})
            assert r.status_code == 422, (path, q)
            assert r.json()["errors"][0]["field"] == "query.q"


def test_relevance_orders_title_matches_above_body_matches(anon: TestClient, db: Session) -> None:
    body = b.letter(db, "body", title="Open letter", published_on=date(2021, 1, 1))
    body.body = "The signatories ask about cotton grown in the region."
    summary = b.letter(db, "summary", title="Another letter", published_on=date(2020, 6, 1))
    summary.summary = "On cotton."
    b.letter(db, "title", title="Cotton and forced labour", published_on=date(2019, 1, 1))
    b.actor(db, "Cotton Campaign", kind="organisation")
    b.actor(db, "Anti-Slavery International", kind="organisation", aliases=["Cotton coalition"])
    db.commit()
    # The newest letter mentions cotton in its body only: it comes last.
    assert _letters(anon, "cotton") == ["title", "summary", "body"]
    assert _search(anon, "cotton") == (
        ["title", "summary", "body"],
        ["Cotton Campaign", "Anti-Slavery International"],
    )
    assert _actors(anon, "cotton") == ["Cotton Campaign", "Anti-Slavery International"]
    # Pages of one follow the same order, the cursor carrying the relevance.
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"q": "cotton", "limit": 1} | ({"cursor": cursor} if cursor else {})
        page = anon.get("/v1/letters", params=params).json()
        seen += [item["slug"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["title", "summary", "body"]
    # Ties keep a stable order: newest letters first, then the higher id.
    b.letter(db, "tie-old", title="Tie", published_on=date(2018, 1, 1))
    b.letter(db, "tie-new", title="Tie", published_on=date(2022, 1, 1))
    db.commit()
    assert _letters(anon, "tie") == ["tie-new", "tie-old"]


def test_the_index_follows_letter_and_campaign_writes(client: TestClient, admin: TestClient) -> None:
    assert client.post("/v1/campaigns", json={"slug": "c", "name": "Hong Kong 2019"}).status_code == 201
    r = client.post("/v1/letters", json={"slug": "s", "title": "First words", "campaign": "c"})
    assert r.status_code == 201, r.text
    assert _letters(client, "first") == ["s"]
    assert _letters(client, "hongkong") == ["s"]
    assert (
        client.patch(
            "/v1/letters/s", json={"title": "Second thoughts", "body": "Detained booksellers"}
        ).status_code
        == 200
    )
    assert _letters(client, "first") == []
    assert _letters(client, "second bookseller") == ["s"]
    assert client.patch("/v1/campaigns/c", json={"name": "Tibet 2008"}).status_code == 200
    assert _letters(client, "hong kong") == []
    assert _letters(client, "tibetan") == ["s"]
    assert client.patch("/v1/letters/s", json={"campaign": None}).status_code == 200
    assert _letters(client, "tibet") == []
    assert admin.delete("/v1/letters/s").status_code == 204
    assert _letters(client, "second") == []
    assert _search(client, "second") == ([], [])


def test_the_index_follows_actor_writes(client: TestClient, admin: TestClient, db: Session) -> None:
    made = client.post("/v1/actors", json={"kind": "organisation", "name": "Campaign for Uyghurs"})
    assert made.status_code == 201, made.text
    actor_id = made.json()["id"]
    assert _actors(client, "uighur") == ["Campaign for Uyghurs"]
    # rename
    r = client.patch(f"/v1/actors/{actor_id}", json={"name": "Tibet Watch"})
    assert r.status_code == 200, r.text
    assert _actors(client, "uyghur") == []
    assert _actors(client, "tibetan watch") == ["Tibet Watch"]
    # aliases added, then changed
    assert (
        client.patch(f"/v1/actors/{actor_id}", json={"aliases": ["Free Tibet Campaign"]}).status_code == 200
    )
    assert _actors(client, "free campaign") == ["Tibet Watch"]
    assert client.patch(f"/v1/actors/{actor_id}", json={"aliases": ["Tibet Info"]}).status_code == 200
    assert _actors(client, "free campaign") == []
    assert _actors(client, "info") == ["Tibet Watch"]
    # merge: the merged actor's name is the kept one's alias; the merged one is gone
    other = client.post("/v1/actors", json={"kind": "organisation", "name": "International Tibet Network"})
    other_id = other.json()["id"]
    assert _actors(client, "network") == ["International Tibet Network"]
    r = client.post(f"/v1/actors/{actor_id}/merge", json={"merge": [other_id]})
    assert r.status_code == 200, r.text
    assert _search(client, "network")[1] == ["Tibet Watch"]
    # delete
    assert admin.delete(f"/v1/actors/{actor_id}").status_code == 204
    assert _actors(client, "tibet") == []


def test_the_index_follows_imports_and_any_sql_write(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    r = client.post(
        "/v1/letters/l1/signatures/import",
        content="name,kind\nUyghur Human Rights Project,organisation\nJane Citizén,person\n".encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    assert _actors(client, "uighur projects") == ["Uyghur Human Rights Project"]
    assert _actors(client, "citizen") == ["Jane Citizén"]
    # A row written by plain SQL (as a bulk load's COPY writes) is indexed too: triggers keep it.
    db.execute(
        text(
            "INSERT INTO actors (kind, name, match_name, search_text, variant_key, created_at, updated_at) "
            "VALUES ('person', 'Ilham Tohti', 'ilham tohti', 'ilham tohti', 'ilham tohti', "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        )
    )
    db.commit()
    assert _actors(client, "tohti") == ["Ilham Tohti"]


def test_imported_actors_have_the_documents_their_insert_trigger_makes(
    client: TestClient, db: Session, backend: str
) -> None:
    """An import computes its new actors' search documents itself on PostgreSQL (in its INSERT,
    so that the insert trigger skips them): each must be the document the trigger makes for
    the same name and sort name, in both index kinds (the tsvector; SQLite's FTS5 row)."""
    b.letter(db, "l1")
    db.commit()
    rows = [
        ("Uyghur Human Rights Project", "organisation", ""),
        ("Jane Citizén", "person", "Citizén, Jane"),
        ("Dr. Ilham Tohti", "person", "Tohti"),
        ("Organisation d'Aide \\ Tab\tEnd", "organisation", "Aide"),
        ("Sayragul Sauytbay", "person", ""),
    ]
    body = "name,kind,sort_name\n" + "".join(f'"{n}",{k},"{s}"\n' for n, k, s in rows)
    r = client.post(
        "/v1/letters/l1/signatures/import",
        content=body.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["created"] == len(rows)
    imported = {a.name: a.id for a in db.scalars(select(Actor))}
    assert len(imported) == len(rows)
    # The same actors written by plain SQL, as any other writer: the insert trigger makes them.
    for actor in db.scalars(select(Actor).order_by(Actor.id)).all():
        db.execute(
            text(
                "INSERT INTO actors (kind, name, sort_name, match_name, search_text, variant_key, "
                "created_at, updated_at) VALUES (:kind, :name, :sort_name, 'x', 'x', 'x', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"kind": actor.kind, "name": actor.name, "sort_name": actor.sort_name},
        )
    db.commit()
    document = (
        "select a.id, a.name, cast(a.search_vector as text) from actors a"
        if backend == "postgresql"
        else "select a.id, a.name, f.name || '|' || coalesce(f.aliases, '') from actors a "
        "join actors_fts f on f.rowid = a.id"
    )
    by_name: dict[str, dict[bool, str]] = {}
    for actor_id, name, doc in db.execute(text(document)):
        by_name.setdefault(name, {})[imported[name] == actor_id] = doc
    assert sorted(by_name) == sorted(imported)
    for name, docs in by_name.items():
        assert docs[True] and docs[True] == docs[False], name
    assert _actors(client, "tohti") == ["Dr. Ilham Tohti", "Dr. Ilham Tohti"]
    assert _actors(client, "aide") == ["Organisation d'Aide \\ Tab\tEnd"] * 2


def test_the_home_page_finds_people_and_organisations(anon: TestClient, db: Session) -> None:
    person = b.actor(db, "Rahima Mahmut")
    org = b.actor(db, "Uyghur Human Rights Project", kind="organisation")
    b.letter(db, "uyghur-letter", title="Letter on the Uighurs")
    db.commit()
    page = anon.get("/", params={"q": "uighur"})
    assert page.status_code == 200
    assert f'<a href="/actors/{org.id}">Uyghur Human Rights Project</a>' in page.text
    assert "actors-heading" in page.text
    assert 'href="/letters/uyghur-letter"' in page.text
    page = anon.get("/", params={"q": "mahmut"})
    assert f'<a href="/actors/{person.id}">Rahima Mahmut</a>' in page.text
    assert "No letters match." in page.text
    assert "actors-heading" not in anon.get("/").text  # (no section of actors without a query)


def test_postgresql_answers_from_the_gin_index(db: Session, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("the plan of PostgreSQL's index")
    stmt, relevance = fulltext.apply(db, select(Actor.id), Actor, "uyghur congress")
    sql = stmt.order_by(relevance.desc()).compile(
        dialect=db.get_bind().dialect, compile_kwargs={"literal_binds": True}
    )
    db.execute(text("SET LOCAL enable_seqscan = off"))  # a test table is small enough to scan
    plan = "\n".join(db.scalars(text(f"EXPLAIN {sql}")))
    assert "ix_actors_search_vector" in plan, plan
