"""One rule for each kind of input, the same on every path in: countries, the closed vocabularies
and URLs are checked alike by the API (bodies and filters) and by the signature import (CSV and
JSON rows); the database holds the vocabularies with CHECK constraints."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Actor, Signature
from app.vocabulary import (
    ACTOR_KINDS,
    EVENT_KINDS,
    LETTER_STATUSES,
    ORG_TYPES,
    RECIPIENT_ROLES,
    SIGNATURE_STATUSES,
    OrgType,
    labelled,
)
from tests import builders as b


def post_csv(client: TestClient, slug: str, text: str) -> Response:
    return client.post(  # type: ignore[no-any-return]
        f"/v1/letters/{slug}/signatures/import", content=text.encode(), headers={"Content-Type": "text/csv"}
    )


def post_json(client: TestClient, slug: str, rows: list[dict[str, Any]]) -> Response:
    return client.post(f"/v1/letters/{slug}/signatures/import", json=rows)  # type: ignore[no-any-return]


def written(db: Session) -> tuple[int, int]:
    db.expire_all()
    return (
        db.scalar(select(func.count()).select_from(Actor)) or 0,
        db.scalar(select(func.count()).select_from(Signature)) or 0,
    )


def refused_field(r: Response) -> str:
    """The one field a 422 problem names."""
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    fields: set[str] = {e["field"] for e in r.json()["errors"]}
    assert len(fields) == 1, fields
    return fields.pop()


def row_errors(r: Response) -> dict[int, str]:
    """The error rows of a refused import: {row: error}."""
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return {row["row"]: row["error"] for row in r.json()["rows"] if row["status"] == "error"}


# --- countries ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["ZZ", "zz", "AA", "QM", "XA", "UK", "EU"])
def test_a_code_that_is_no_country_is_refused_by_the_api(client: TestClient, db: Session, code: str) -> None:
    before = written(db)
    r = client.post("/v1/actors", json={"kind": "organisation", "name": "Somewhere Trust", "country": code})
    assert refused_field(r) == "body.country"
    assert "not an ISO 3166-1 alpha-2 code" in r.json()["detail"]
    for path in ("/v1/bodies", "/v1/parties"):
        r = client.post(path, json={"slug": "x", "name": "X", "country": code})
        assert refused_field(r) == "body.country"
    assert written(db) == before


@pytest.mark.parametrize("code", ["ZZ", "AA", "UK"])
def test_a_code_that_is_no_country_is_refused_by_the_import(
    client: TestClient, db: Session, code: str
) -> None:
    b.letter(db, "l")
    before = written(db)
    hint = "; did you mean GB?" if code == "UK" else ""
    r = post_csv(client, "l", f"name,country\nGood Trust,GB\nSomewhere Trust,{code}\n")
    assert row_errors(r) == {2: f"country: '{code}' is not an ISO 3166-1 alpha-2 code{hint}"}
    r = post_json(client, "l", [{"name": "Good Trust"}, {"name": "Somewhere Trust", "country": code.lower()}])
    assert row_errors(r) == {2: f"country: '{code.lower()}' is not an ISO 3166-1 alpha-2 code{hint}"}
    assert written(db) == before


def test_kosovo_is_a_country_on_every_path(client: TestClient, anon: TestClient, db: Session) -> None:
    r = client.post("/v1/actors", json={"kind": "organisation", "name": "Prishtina Trust", "country": "xk"})
    assert r.status_code == 201, r.text
    assert r.json()["country"] == "XK"
    assert (
        client.post("/v1/bodies", json={"slug": "kuvendi", "name": "Kuvendi", "country": "XK"}).status_code
        == 201
    )

    b.letter(db, "l")
    r = post_csv(client, "l", "name,country\nPeja Trust,xk\n")
    assert r.status_code == 200, r.text
    r = post_json(client, "l", [{"name": "Gjakova Trust", "country": "XK"}])
    assert r.status_code == 200, r.text
    db.expire_all()
    assert set(db.scalars(select(Actor.country).where(Actor.name.like("%Trust"))).all()) == {"XK"}

    found = anon.get("/v1/actors", params={"country": "xk"}).json()["items"]
    assert {a["name"] for a in found} == {"Prishtina Trust", "Peja Trust", "Gjakova Trust"}
    signed = anon.get("/v1/letters/l/signatures", params={"country": "XK"}).json()["items"]
    assert {s["actor"]["name"] for s in signed} == {"Peja Trust", "Gjakova Trust"}
    counts = anon.get("/v1/letters/l/counts").json()
    assert counts["by_country"] == [{"key": "XK", "label": "Kosovo", "count": 2}]


def test_a_filter_on_no_country_is_refused(anon: TestClient, db: Session) -> None:
    b.letter(db, "l")
    assert refused_field(anon.get("/v1/actors", params={"country": "ZZ"})) == "query.country"
    assert refused_field(anon.get("/v1/letters/l/signatures", params={"country": "ZZ"})) == "query.country"


# --- vocabularies ---------------------------------------------------------------------------


def test_the_api_schemas_and_the_import_schema_list_each_vocabulary(anon: TestClient) -> None:
    spec = anon.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]

    def enum(prop: dict[str, Any]) -> list[str]:
        options = prop.get("anyOf", [prop])
        return next(o["enum"] for o in options if "enum" in o)

    assert enum(schemas["ActorCreate"]["properties"]["kind"]) == list(ACTOR_KINDS)
    assert enum(schemas["ActorCreate"]["properties"]["org_type"]) == list(ORG_TYPES)
    assert enum(schemas["LetterCreate"]["properties"]["status"]) == list(LETTER_STATUSES)
    assert enum(schemas["SignatureCreate"]["properties"]["status"]) == list(SIGNATURE_STATUSES)
    assert enum(schemas["RecipientCreate"]["properties"]["role"]) == list(RECIPIENT_ROLES)
    assert enum(schemas["EventCreate"]["properties"]["kind"]) == list(EVENT_KINDS)
    body = spec["paths"]["/v1/letters/{slug}/signatures/import"]["post"]["requestBody"]["content"]
    row = body["application/json"]["schema"]["items"]["properties"]
    assert row["kind"]["enum"] == list(ACTOR_KINDS)
    assert row["org_type"]["enum"] == list(ORG_TYPES)
    assert row["status"]["enum"] == list(SIGNATURE_STATUSES)


def test_a_value_outside_a_vocabulary_is_refused_by_the_api_and_the_import(
    client: TestClient, db: Session
) -> None:
    b.letter(db, "l")
    before = written(db)
    r = client.post("/v1/actors", json={"kind": "robot", "name": "R2"})
    assert refused_field(r) == "body.kind"
    r = client.post("/v1/actors", json={"kind": "organisation", "name": "R2", "org_type": "club"})
    assert refused_field(r) == "body.org_type"
    r = client.post(
        "/v1/letters/l/signatures", json={"actor": {"kind": "person", "name": "P"}, "status": "maybe"}
    )
    assert refused_field(r) == "body.status"
    r = post_csv(
        client, "l", "name,kind,org_type,status\nA,robot,,\nB,organisation,club,\nC,,,maybe\nD,,,Unverified\n"
    )
    assert row_errors(r) == {
        1: "kind: 'robot' is not person or organisation",
        2: f"org_type: 'club' is not one of {', '.join(ORG_TYPES)}",
        3: "status: 'maybe' is not confirmed or unverified",
    }
    assert written(db) == before


def test_labels_name_every_value_of_their_vocabulary_and_no_other() -> None:
    """The analytics' labels are checked against the vocabulary they label."""
    labels = {value: value.title() for value in ORG_TYPES}
    assert labelled(OrgType, labels) == labels
    with pytest.raises(ValueError, match="do not match"):
        labelled(OrgType, {value: value for value in ORG_TYPES if value != "faith"})  # one missing
    with pytest.raises(ValueError, match="do not match"):
        labelled(OrgType, {**labels, "club": "Club"})  # one outside the vocabulary


# --- URLs -----------------------------------------------------------------------------------

NOT_WEB_URLS = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "file:///etc/passwd",
    "mailto:someone@example.org",
    "ftp://example.org/letter.pdf",
    "https://",
    "https://exa mple.org/",
    "//example.org/letter",
    "example.org/letter",
]


@pytest.mark.parametrize("url", NOT_WEB_URLS)
def test_a_url_that_is_not_http_is_refused_by_the_api_naming_the_field(
    client: TestClient, db: Session, url: str
) -> None:
    letter = b.letter(db, "l")
    signer = b.actor(db, "Signer")
    db.expire_all()
    for path, doc, field in (
        ("/v1/letters/l/sources", {"label": "Press", "url": url}, "body.url"),
        ("/v1/letters/l/claims", {"count": 3, "url": url}, "body.url"),
        ("/v1/letters/l/events", {"date": "2020-09-09", "kind": "other", "url": url}, "body.url"),
        ("/v1/letters/l/signatures", {"actor_id": signer.id, "source": url}, "body.source"),
        (
            "/v1/actors",
            {"kind": "organisation", "name": "Site", "identifiers": [{"scheme": "website", "value": url}]},
            "body.identifiers.0",
        ),
    ):
        r = client.post(path, json=doc)
        assert refused_field(r) == field, path
        assert "http(s) URL" in r.json()["detail"], path
    b.sign(db, letter, signer)
    r = client.patch(f"/v1/letters/l/signatures/{signer.id}", json={"source": url})
    assert refused_field(r) == "body.source"


@pytest.mark.parametrize("url", NOT_WEB_URLS[:7])
def test_a_url_that_is_not_http_is_refused_by_the_import_naming_the_row(
    client: TestClient, db: Session, url: str
) -> None:
    b.letter(db, "l")
    before = written(db)
    rows = [
        {"name": "Good Trust", "source": "https://example.org/list", "website": "https://good.example.org/"},
        {"name": "Evidence Trust", "source": url},
        {"name": "Website Trust", "website": url},
    ]
    expected = {2: "source: must be an http(s) URL with a host (https://example.org/)"}
    expected[3] = "website: must be an http(s) URL with a host (https://example.org/)"
    assert row_errors(post_json(client, "l", rows)) == expected
    quoted = url.replace('"', '""')
    text = (
        "name,source,website\nGood Trust,https://example.org/list,https://good.example.org/\n"
        f'Evidence Trust,"{quoted}",\nWebsite Trust,,"{quoted}"\n'
    )
    assert row_errors(post_csv(client, "l", text)) == expected
    assert written(db) == before


def test_http_and_https_urls_are_kept_trimmed(client: TestClient, db: Session) -> None:
    b.letter(db, "l")
    r = client.post("/v1/letters/l/sources", json={"url": " HTTPS://Example.org/letter "})
    assert r.status_code == 201, r.text
    assert r.json()["url"] == "HTTPS://Example.org/letter"
    r = client.post(
        "/v1/letters/l/signatures",
        json={"actor": {"kind": "person", "name": "P"}, "source": "http://example.org/p"},
    )
    assert r.status_code == 201, r.text
    r = post_csv(client, "l", "name,source\nImported Trust,https://example.org/list\n")
    assert r.status_code == 200, r.text
    db.expire_all()
    assert set(db.scalars(select(Signature.source)).all()) == {
        "http://example.org/p",
        "https://example.org/list",
    }
