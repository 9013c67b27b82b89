"""Nothing a client sends becomes a 500 or an answer without bounds: forged cursors, charsets
that are not text, JSON nested deep, absurd CSV shapes, dates far outside the window, numbers
past 32 bits, identifiers of the wrong shape, huge timelines and import reports (issue 20)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import date

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.config import Settings
from app.main import create_app
from tests import builders as b
from tests.conftest import Keys, committing

PROBLEM = "application/problem+json"


def problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith(PROBLEM)  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    return body


def cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.fixture
def registry(db: Session) -> dict[str, int]:
    campaign = b.campaign(db, "camp")
    one, two = b.letter(db, "one", campaign=campaign), b.letter(db, "two", campaign=campaign)
    house = b.body(db, "house")
    people = [b.actor(db, f"Person {i}") for i in range(3)]
    for who in people:
        b.sign(db, one, who)
        b.sign(db, two, who)
    b.membership(db, people[0], house, None, date(2020, 1, 1))
    return {"actor": people[0].id}


FORGED = [
    "[true]",
    '["a"]',
    "[NaN]",
    "[Infinity]",
    "[1e400]",
    "[1.5]",
    '[{"d": "2020-01-01"}]',
    f"[{2**70}]",
    '["\\u0000"]',
    "[[1]]",
    "[null]",
    '{"a": 1}',
    "[1, 2, 3]",
    '[true, "a"]',
    '["a", {"d": "x"}]',
    '[{"d": "2020-01-01"}, true]',
    '[{"d": "2020-01-01"}, "1"]',
    '[{"d": 5}, 1]',
    "[" * 3000 + "]" * 3000,
]


def test_forged_cursors_are_422_on_every_keyset_list(anon: TestClient, registry: dict[str, int]) -> None:
    actor = registry["actor"]
    lists = [
        "/v1/letters",
        "/v1/actors",
        "/v1/campaigns",
        "/v1/bodies",
        "/v1/letters/one/signatures",
        "/v1/letters/one/recipients",
        "/v1/letters/one/events",
        f"/v1/actors/{actor}/signatures",
        f"/v1/actors/{actor}/letters-received",
        f"/v1/actors/{actor}/memberships",
        f"/v1/actors/{actor}/co-signatories",
        "/v1/overlaps/signatories",
    ]
    forged = [cursor(raw) for raw in FORGED] + ["not base64!", "%%%", "AAAA"]
    for path in lists:
        given = {"letters": "one,two", "match": "all"} if path.startswith("/v1/overlaps") else {}
        assert anon.get(path, params={**given, "limit": 1}).status_code == 200, path
        for value in forged:
            body = problem(anon.get(path, params={**given, "limit": 1, "cursor": value}), 422)
            assert "cursor" in str(body["detail"]), (path, value)
    # and a cursor the service issued still walks the list
    first = anon.get("/v1/letters", params={"limit": 1}).json()
    assert anon.get("/v1/letters", params={"limit": 1, "cursor": first["next_cursor"]}).status_code == 200


@pytest.mark.parametrize(
    "charset", ["utf-7", "rot13", "base64", "zlib", "hex", "bz2", "uu", "quopri", "idna", "unicode_escape"]
)
def test_only_text_charsets_are_read(client: TestClient, db: Session, charset: str) -> None:
    b.letter(db, "l")
    for kind, body in (("text/csv", b"name\nA\n"), ("application/json", b'[{"name": "A"}]')):
        response = client.post(
            "/v1/letters/l/signatures/import",
            content=body,
            headers={"Content-Type": f"{kind}; charset={charset}"},
        )
        answer = problem(response, 422)
        assert "charset" in str(answer["detail"]) and answer["errors"][0]["field"] == "header.Content-Type"  # type: ignore[index]


def _nested(depth: int) -> bytes:
    return b'{"a": ' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("depth", [33, 100, 5000, 100_000])
def test_json_nested_past_the_limit_is_422_everywhere(client: TestClient, db: Session, depth: int) -> None:
    b.letter(db, "l")
    for method, path in (
        ("POST", "/v1/letters"),
        ("PATCH", "/v1/letters/l"),
        ("POST", "/v1/actors"),
        ("POST", "/v1/letters/l/signatures"),
        ("POST", "/v1/letters/l/signatures/import"),
    ):
        for body in (_nested(depth), b"[" * depth + b"]" * depth):
            response = client.request(
                method, path, content=body, headers={"Content-Type": "application/json"}
            )
            answer = problem(response, 422)
            assert "32" in str(answer["detail"]), (path, answer)


def test_json_at_the_depth_limit_is_not_refused_for_its_depth(client: TestClient, db: Session) -> None:
    b.letter(db, "l")
    response = client.post("/v1/letters", content=_nested(32), headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "nests deeper" not in response.text  # (the schema's 422)
    # brackets inside strings are text, not nesting
    named = json.dumps({"slug": "brackets", "title": "[" * 400 + '\\"' + "{" * 400 + '"'})
    assert (
        client.post("/v1/letters", content=named, headers={"Content-Type": "application/json"}).status_code
        == 201
    )


@pytest.mark.parametrize("columns", [201, 40_000, 1_000_000])
def test_a_csv_of_too_many_columns_is_refused_at_once(client: TestClient, db: Session, columns: int) -> None:
    b.letter(db, "l")
    header = "name," + ",".join(f"c{i % 7}" for i in range(columns - 1))  # repeats, too
    started = time.monotonic()
    response = client.post(
        "/v1/letters/l/signatures/import",
        content=(header + "\nA\n").encode(),
        headers={"Content-Type": "text/csv"},
    )
    answer = problem(response, 422)
    assert time.monotonic() - started < 5
    assert "MAX_CSV_COLUMNS" in str(answer["detail"]) or "MAX_LINE_BYTES" in str(answer["detail"])


def test_a_long_line_is_refused_with_its_limit(client: TestClient, db: Session) -> None:
    b.letter(db, "l")
    for body in (
        b"name\n" + b"x" * (1024 * 1024 + 1) + b"\n",
        b"name," + b"y" * (2 * 1024 * 1024) + b"\nA\n",
    ):
        answer = problem(
            client.post(
                "/v1/letters/l/signatures/import", content=body, headers={"Content-Type": "text/csv"}
            ),
            422,
        )
        assert "MAX_LINE_BYTES" in str(answer["detail"])
    # 200 columns, some repeated: named and refused for the repeat, not the width
    header = ",".join(["name"] + [f"c{i % 50}" for i in range(199)])
    answer = problem(
        client.post(
            "/v1/letters/l/signatures/import",
            content=f"{header}\nA\n".encode(),
            headers={"Content-Type": "text/csv"},
        ),
        422,
    )
    assert "repeats" in str(answer["detail"])


OUTSIDE = ["0001-01-01", "1899-12-31", "2101-01-01", "9999-12-30", "9999-12-31"]


def test_dates_outside_the_window_are_refused_on_every_field(client: TestClient, db: Session) -> None:
    b.letter(db, "l")
    b.body(db, "house")
    person = client.post("/v1/actors", json={"kind": "person", "name": "P"}).json()["id"]
    for day in OUTSIDE:
        writes = [
            ("POST", "/v1/letters", {"slug": "x", "title": "X", "published_on": day}),
            ("PATCH", "/v1/letters/l", {"published_on": day}),
            ("POST", "/v1/letters/l/signatures", {"actor_id": person, "signed_on": day}),
            ("POST", "/v1/letters/l/events", {"date": day, "kind": "other"}),
            ("POST", f"/v1/actors/{person}/memberships", {"body": "house", "start_date": day}),
        ]
        for method, path, body in writes:
            answer = problem(client.request(method, path, json=body), 422)
            assert "1900-01-01 and 2100-12-31" in str(answer["detail"]), (path, day)
        for path in ("/v1/letters/l/counts", "/v1/letters/l/charts/kind.svg"):
            assert problem(client.get(path, params={"as_of": day}), 422)
        answer = problem(client.get("/v1/letters", params={"published_from": day}), 422)
        report = client.post(
            "/v1/letters/l/signatures/import",
            params={"keep_dates": "true"},
            content=f"name,signed_on,withdrawn_on\nA,{day},\nB,2020-01-01,{day}\n".encode(),
            headers={"Content-Type": "text/csv"},
        )
        rows = problem(report, 422)["rows"]
        assert all("between 1900-01-01 and 2100-12-31" in r["error"] for r in rows), rows  # type: ignore[attr-defined]
    for day in ("1900-01-01", "2100-12-31"):
        assert (
            client.post(
                "/v1/letters", json={"slug": f"d{day[:4]}", "title": "D", "published_on": day}
            ).status_code
            == 201
        )
    assert problem(
        client.post("/v1/letters", json={"slug": "y", "title": "Y", "published_on": "10000-01-01"}), 422
    )


def test_a_timeline_past_its_point_limit_is_422_and_pages_go_coarser(anon: TestClient, db: Session) -> None:
    campaign = b.campaign(db, "wide")
    letter = b.letter(db, "wide", campaign=campaign)
    b.sign(db, letter, b.actor(db, "Early"), date(1900, 1, 1))
    b.sign(db, letter, b.actor(db, "Late"), date(2100, 12, 31))
    for path in ("/v1/letters/wide/timeline", "/v1/campaigns/wide/timeline", "/v1/letters/wide/timeline.svg"):
        answer = problem(anon.get(path, params={"interval": "day"}), 422)
        assert "20000" in str(answer["detail"]) and "MAX_TIMELINE_POINTS" in str(answer["detail"])
    months = anon.get("/v1/letters/wide/timeline", params={"interval": "month"}).json()["points"]
    assert len(months) == 201 * 12 and months[-1]["cumulative"] == 2
    assert anon.get("/letters/wide").status_code == 200
    assert anon.get("/campaigns/wide").status_code == 200


def test_the_last_day_of_year_9999_is_never_a_500(anon: TestClient, db: Session) -> None:
    """Data from before the window (a registry loaded by an older version) still reads."""
    campaign = b.campaign(db, "far")
    letter = b.letter(db, "far", campaign=campaign, published_on=date(9999, 12, 31))
    b.sign(db, letter, b.actor(db, "Far"), date(9999, 12, 31))
    for interval in ("day", "week", "month"):
        for path in ("/v1/letters/far/timeline", "/v1/campaigns/far/timeline"):
            response = anon.get(path, params={"interval": interval})
            assert response.status_code == 200, (path, interval, response.text)
    assert anon.get("/letters/far").status_code == 200
    assert anon.get("/campaigns/far").status_code == 200


def test_numbers_past_32_bits_are_422_on_both_databases(client: TestClient, db: Session) -> None:
    b.letter(db, "l")
    actor = b.actor(db, "A")
    for big in (2**31, 2**32 + 5, 2**63, 10**30):
        for method, path, body in (
            ("POST", "/v1/letters", {"slug": "big", "title": "Big", "claimed_signatory_count": big}),
            ("PATCH", "/v1/letters/l", {"claimed_signatory_count": big}),
            ("POST", "/v1/letters/l/claims", {"count": big, "wording": "w"}),
            ("POST", "/v1/letters/l/signatures", {"actor_id": actor.id, "position": big}),
            ("POST", "/v1/letters/l/signatures", {"actor_id": big}),
        ):
            answer = problem(client.request(method, path, json=body), 422)
            assert "2147483647" in str(answer["detail"]), (path, answer)
        rows = problem(
            client.post(
                "/v1/letters/l/signatures/import",
                content=f"name,position,actor_id\nA,{big},\nB,,{big}\n".encode(),
                headers={"Content-Type": "text/csv"},
            ),
            422,
        )["rows"]
        assert [r["status"] for r in rows] == ["error", "error"]  # type: ignore[attr-defined]
    made = client.post(
        "/v1/letters", json={"slug": "max", "title": "Max", "claimed_signatory_count": 2**31 - 1}
    )
    assert made.status_code == 201 and made.json()["claimed_signatory_count"] == 2**31 - 1


BAD_IDENTIFIERS = [
    ("wikidata", "42"),
    ("wikidata", "Qabc"),
    ("wikidata", "Q42 x"),
    ("wikidata", "https://www.wikidata.org/wiki/Q42"),
    ("ukparliament", "abc"),
    ("ukparliament", "12a"),
    ("theyworkforyou", "uk.org.publicwhip/person/10001"),
    ("website", "javascript:alert(1)"),
    ("website", "ftp://example.org/"),
    ("website", "https://"),
    ("website", "example.org"),
]


def test_identifiers_are_checked_by_their_scheme(client: TestClient, db: Session) -> None:
    b.letter(db, "l")
    for scheme, value in BAD_IDENTIFIERS:
        body = {"kind": "person", "name": "N", "identifiers": [{"scheme": scheme, "value": value}]}
        answer = problem(client.post("/v1/actors", json=body), 422)
        assert scheme in str(answer["detail"]), answer
        rows = problem(
            client.post(
                "/v1/letters/l/signatures/import",
                content=json.dumps([{"name": "N", "identifiers": f"{scheme}:{value}"}]).encode(),
                headers={"Content-Type": "application/json"},
            ),
            422,
        )["rows"]
        assert scheme in rows[0]["error"]  # type: ignore[index]
    good = [
        {"scheme": "wikidata", "value": "Q42"},
        {"scheme": "ukparliament", "value": "172"},
        {"scheme": "theyworkforyou", "value": "10001"},
        {"scheme": "website", "value": "https://example.org/about"},
        {"scheme": "my-registry_2", "value": "anything: goes / here"},
    ]
    made = client.post("/v1/actors", json={"kind": "person", "name": "Good", "identifiers": good})
    assert made.status_code == 201, made.text


@pytest.fixture
def small_report(app: FastAPI, settings: Settings, db: Session, keys: Keys) -> Iterator[TestClient]:
    bounded = create_app(
        Settings(database_url=settings.database_url, import_report_rows=3), database=app.state.database
    )
    with TestClient(bounded, headers={"Authorization": f"Bearer {keys.write}"}) as http:
        yield committing(http, db)


def test_the_import_report_lists_the_first_rows_of_each_status(small_report: TestClient, db: Session) -> None:
    letter = b.letter(db, "l")
    signed = b.actor(db, "Signed Already", kind="organisation")
    b.sign(db, letter, signed)
    lines = ["name"] + [f"New Org {i}" for i in range(10)] + ["Signed Already"] * 5
    for rows_param in ("all", "flagged"):
        report = small_report.post(
            "/v1/letters/l/signatures/import",
            params={"dry_run": "true", "rows": rows_param},
            content="\n".join(lines).encode(),
            headers={"Content-Type": "text/csv"},
        ).json()
        assert report["summary"]["created"] == 10 and report["summary"]["duplicate"] == 5
        statuses = [r["status"] for r in report["rows"]]
        if rows_param == "all":
            assert statuses == ["created"] * 3 + ["duplicate"] * 3
            assert report["rows_left_out"] == {"created": 7, "duplicate": 2}
        else:
            assert statuses == ["duplicate"] * 3 and report["rows_left_out"] == {"duplicate": 2}


def test_ids_past_32_bits_are_422_on_both_databases(
    client: TestClient, admin: TestClient, db: Session
) -> None:
    b.letter(db, "l")
    for big in (2**31, 2**40, 2**63 + 1):
        for method, path in (
            ("GET", f"/v1/actors/{big}"),
            ("PATCH", f"/v1/actors/{big}"),
            ("GET", f"/v1/actors/{big}/signatures"),
            ("GET", f"/v1/actors/{big}/memberships/{big}"),
            ("GET", f"/v1/letters/l/signatures/{big}"),
            ("GET", f"/v1/letters/l/recipients/{big}"),
            ("GET", f"/v1/actors/{big}/co-signatories"),
            ("GET", f"/v1/letters?signatory={big}"),
            ("GET", f"/v1/letters?recipient={big}"),
        ):
            response = client.request(method, path, json={} if method == "PATCH" else None)
            assert problem(response, 422), path
        assert admin.delete(f"/v1/letters/l/recipients/{big}").status_code == 422
        page = client.get(f"/actors/{big}")
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert problem(client.get("/v1/actors/2147483647"), 404)


@pytest.mark.parametrize("value", [True, False, "12", 12.5, [1]])
def test_a_count_must_be_a_json_integer(client: TestClient, value: object) -> None:
    """JSON true is not 1 and "12" is not 12: a count or an id that is not a JSON integer is a 422
    naming the field, never a silent conversion."""
    r = client.post("/v1/letters", json={"slug": "counted", "title": "T", "claimed_signatory_count": value})
    assert r.status_code == 422, r.text
    assert "claimed_signatory_count" in r.json()["detail"]
    r = client.post("/v1/actors/1/merge", json={"merge": [value]})
    assert r.status_code == 422, r.text


# Every read that takes a letter's or a campaign's slug, in its path or its query, with a NUL in
# it: PostgreSQL refuses NUL in text, so such a URL is refused, saying where, before any SQL.
NUL_READS = [
    "/v1/letters/mp{nul}s/counts",
    "/v1/letters/mp{nul}s/timeline",
    "/v1/letters/mp{nul}s/badge.svg",
    "/v1/letters/mp{nul}s/charts/party.svg",
    "/v1/campaigns/camp{nul}/timeline",
    "/v1/campaigns/camp{nul}/reach",
    "/v1/overlaps?letters=mps,u{nul}n",
    "/v1/overlaps?campaign=camp{nul}",
    "/v1/overlaps/signatories?letters=mps,u{nul}n",
    "/v1/overlaps/signatories?campaign=camp{nul}",
    "/v1/overlaps.svg?letters=mps,u{nul}n",
    "/v1/overlaps.svg?campaign=camp{nul}",
    "/v1/letters/mp{nul}s",
    "/letters/mp{nul}s",
    "/campaigns/camp{nul}",
]


@pytest.mark.parametrize("path", NUL_READS)
def test_a_nul_in_a_slug_is_a_4xx_on_every_read(anon: TestClient, db: Session, path: str) -> None:
    camp = b.campaign(db, "camp")
    b.letter(db, "mps", campaign=camp)
    b.letter(db, "un", campaign=camp)
    response = anon.get(path.format(nul="%00"))
    assert response.status_code == 422, (path, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    where = "query" if "?" in path else "path"
    assert response.json()["errors"][0]["loc"] == [where]
