"""`/v1/search`: one box over letters and actors."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

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
