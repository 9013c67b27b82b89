"""Every list and every analytic that answers rows answers them as CSV and NDJSON too, by
`?format=` or by `Accept`, through one mechanism (`app.formats`, `app.pagination.Pager`): a
list streams all its rows (every page, not only the first), with an `ETag` and a 304; an
unknown format is a 422, an `Accept` the service cannot serve a 406; a cell that a spreadsheet
would run as a formula is neutralised."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.config import Settings
from app.db.database import Database
from app.main import create_app
from tests import builders as b
from tests.conftest import Keys
from tests.test_list_pages import _list_operations, _registry
from tests.waiting import wait_for

CSV = "text/csv"
NDJSON = "application/x-ndjson"
# The lists that the webhook worker changes without a change record: streamed without a validator.
UNVALIDATED = {"list_webhooks", "list_webhook_deliveries"}


@pytest.fixture
def small_pages(settings: Settings, engine: Engine, keys: Keys) -> Iterator[TestClient]:
    """An admin client of an app whose exports read one row per page, so that every export of
    two rows or more spans several pages (and several read sessions)."""
    app = create_app(settings.model_copy(update={"export_page_rows": 1}), database=Database(engine))
    with TestClient(app, headers={"Authorization": f"Bearer {keys.admin}"}) as client:
        yield client


def _with(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A JSON item's values by dotted name, the nested objects flattened."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _text(value: Any) -> str | None:
    """How a CSV cell shows a plain JSON value (None: not a plain value)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return None
    return str(value)


def _check_csv_row(row: dict[str, str], item: dict[str, Any], operation: str) -> None:
    """A CSV row holds its JSON item: nested objects of the schema as dotted columns, a list of
    plain values joined with `; `, a free-form object or a list of objects as its JSON text;
    and every value of the item is in some column."""
    for column, cell in row.items():
        value: Any = item
        for key in column.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
            assert cell == "; ".join(str(v) for v in value), (operation, column)
        elif isinstance(value, dict | list):
            assert json.loads(cell) == value, (operation, column)
        else:
            assert cell == _text(value), (operation, column)
    for key in _flat(item):
        assert any(key == c or key.startswith(f"{c}.") for c in row), (operation, key)


def _csv_rows(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))


def _ndjson_lines(response: Any) -> list[Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson; charset=utf-8"
    return [json.loads(line) for line in response.text.splitlines()]


def _check_validator(client: TestClient, url: str, headers: dict[str, str]) -> None:
    """The answer has an ETag, and a conditional request with it gets a 304 (with the same
    ETag, no body, `Vary: Accept`). On PostgreSQL the registry's validator also moves while a
    transaction of another client is in progress (it errs towards a new ETag, never towards a
    stale one), so the pair of requests is repeated, with a deadline, until a quiet moment."""

    def answered_304() -> bool:
        etag = client.get(url, headers=headers).headers.get("etag")
        assert etag, url
        again = client.get(url, headers={**headers, "If-None-Match": etag})
        if again.status_code == 200:
            return False
        assert again.status_code == 304 and again.content == b"", url
        assert again.headers["etag"] == etag and "accept" in again.headers["vary"].lower(), url
        return True

    wait_for(answered_304, f"a 304 for {url}", timeout=30)


def test_every_list_streams_all_its_rows_as_csv_and_ndjson(
    client: TestClient, admin: TestClient, small_pages: TestClient, db: Session
) -> None:
    urls = _registry(db, client, admin)
    assert set(urls) == _list_operations(admin)  # a new list joins this test
    for operation, url in urls.items():
        items = admin.get(_with(url, "limit=1000")).json()["items"]
        assert len(items) >= 2, operation
        # `limit` is a page's size; an export is the whole list, whatever the page asked for.
        by_query = {fmt: small_pages.get(_with(url, f"limit=1&format={fmt}")) for fmt in ("csv", "ndjson")}
        by_accept = {
            "csv": small_pages.get(_with(url, "limit=1"), headers={"Accept": CSV}),
            "ndjson": small_pages.get(_with(url, "limit=1"), headers={"Accept": f"{NDJSON}, */*;q=0.5"}),
        }
        for fmt in ("csv", "ndjson"):
            for chosen in (by_query[fmt], by_accept[fmt]):
                assert chosen.headers["content-disposition"].endswith(f'.{fmt}"'), operation
                assert "accept" in chosen.headers["vary"].lower(), operation
            assert by_accept[fmt].content == by_query[fmt].content, operation
        csv_rows, lines = _csv_rows(by_query["csv"]), _ndjson_lines(by_query["ndjson"])
        if operation == "list_signatures":  # its own export: the import's columns
            ids = [item["actor"]["id"] for item in items]
            assert [int(row["actor_id"]) for row in csv_rows] == ids
            assert [line["actor_id"] for line in lines] == ids
        else:
            assert lines == items, operation
            assert len(csv_rows) == len(items), operation
            for row, item in zip(csv_rows, items, strict=True):
                _check_csv_row(row, item, operation)
        for fmt, headers in (("csv", {}), ("ndjson", {"Accept": NDJSON})):
            export_url = _with(url, f"format={fmt}") if not headers else url
            response = small_pages.get(export_url, headers=headers)
            if operation in UNVALIDATED:
                assert "etag" not in response.headers and response.headers["cache-control"] == "no-store"
            else:
                _check_validator(small_pages, export_url, headers)


def test_a_write_moves_an_exports_validator(client: TestClient, db: Session) -> None:
    letter = b.letter(db, "l")
    b.sign(db, letter, b.actor(db, "Ada Lovelace"))
    db.commit()
    first = client.get("/v1/actors?format=csv")
    assert (
        client.get("/v1/actors?format=csv", headers={"If-None-Match": first.headers["etag"]}).status_code
        == 304
    )
    assert client.post("/v1/actors", json={"kind": "person", "name": "Grace Hopper"}).status_code == 201
    second = client.get("/v1/actors?format=csv", headers={"If-None-Match": first.headers["etag"]})
    assert second.status_code == 200 and second.headers["etag"] != first.headers["etag"]
    assert [row["name"] for row in _csv_rows(second)] == ["Ada Lovelace", "Grace Hopper"]
    # JSON and CSV are different answers: neither's validator answers for the other.
    json_etag = client.get("/v1/actors").headers["etag"]
    assert json_etag != second.headers["etag"]
    assert client.get("/v1/actors?format=csv", headers={"If-None-Match": json_etag}).status_code == 200


def _breakdown_rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "breakdown": key,
            "key": entry["key"],
            "label": entry["label"],
            "count": entry["count"],
            "share_of_body": entry.get("share_of_body"),
        }
        for key in ("kind", "body", "party", "country", "org_type")
        for entry in answer[f"by_{key}"]
    ]


def _analytics(db: Session) -> dict[str, tuple[str, Any]]:
    """Each analytic that answers rows: its URL and the rows expected from its JSON answer."""
    campaign = b.campaign(db, "c")
    house = b.body(db, "house")
    one = b.letter(db, "one", campaign=campaign, published_on=date(2020, 9, 1), title="Members' letter")
    two = b.letter(db, "two", campaign=campaign, published_on=date(2020, 9, 1), title="Members again")
    actors = [b.actor(db, f"Member {n}", country="GB") for n in range(3)]
    b.membership(db, actors[0], house, None, date(2020, 1, 1))
    org = b.actor(db, "Uighur Support Group", kind="organisation", org_type="ngo")
    for n, actor in enumerate(actors):
        b.sign(db, one, actor, signed_on=date(2020, 9, 2 + n))
    b.sign(db, two, actors[0], signed_on=date(2020, 9, 9))
    b.sign(db, b.letter(db, "three"), actors[1], signed_on=date(2020, 9, 10))
    b.sign(db, two, org, signed_on=date(2020, 9, 12), withdrawn_on=date(2020, 9, 20))
    db.commit()

    def timeline(answer: dict[str, Any]) -> list[Any]:
        return list(answer["points"])

    def campaign_timeline(answer: dict[str, Any]) -> list[Any]:
        rows = [{"letter": s["letter"], **p} for s in answer["series"] for p in s["points"]]
        return rows + [{"letter": None, "date": p["date"], "new": p["new"], "withdrawn": None,
                        "cumulative": p["cumulative"]} for p in answer["distinct"]]  # fmt: skip

    def pairs(answer: dict[str, Any]) -> list[Any]:
        return list(answer["pairs"])

    def search(answer: dict[str, Any]) -> list[Any]:
        letters = [
            {
                "type": "letter",
                "slug": x["slug"],
                "id": None,
                "name": x["title"],
                "published_on": x["published_on"],
            }
            for x in answer["letters"]
        ]
        return letters + [
            {"type": "actor", "slug": None, "id": a["id"], "name": a["name"], "published_on": None}
            for a in answer["actors"]
        ]

    return {
        "letter_counts": ("/v1/letters/one/counts", _breakdown_rows),
        "letter_timeline": ("/v1/letters/two/timeline?interval=week", timeline),
        "campaign_timeline": ("/v1/campaigns/c/timeline", campaign_timeline),
        "campaign_reach": ("/v1/campaigns/c/reach", _breakdown_rows),
        "overlaps": ("/v1/overlaps?letters=one,two,three", pairs),
        "search": ("/v1/search?q=member", search),
    }


def test_every_analytic_answers_its_rows_as_csv_and_ndjson(anon: TestClient, db: Session) -> None:
    for operation, (url, expected_rows) in _analytics(db).items():
        answer = anon.get(url)
        assert answer.status_code == 200, (operation, answer.text)
        expected = expected_rows(answer.json())
        assert len(expected) >= 2, operation
        lines = _ndjson_lines(anon.get(_with(url, "format=ndjson")))
        assert lines == expected, operation
        assert _ndjson_lines(anon.get(url, headers={"Accept": NDJSON})) == expected, operation
        by_query = anon.get(_with(url, "format=csv"))
        by_accept = anon.get(url, headers={"Accept": "text/csv;q=0.9, application/json;q=0.5"})
        assert by_query.content == by_accept.content, operation
        rows = _csv_rows(by_query)
        assert list(rows[0]) == list(expected[0]), operation  # the columns, in order
        assert rows == [{k: _text(v) for k, v in row.items()} for row in expected], operation
        assert by_query.headers["content-disposition"].endswith('.csv"'), operation
        for fmt in ("csv", "ndjson"):
            _check_validator(anon, _with(url, f"format={fmt}"), {})


@pytest.mark.parametrize(
    "url", ["/v1/actors", "/v1/letters", "/v1/letters/l/signatures", "/v1/letters/l/counts", "/v1/search?q=a"]
)
def test_an_unknown_format_or_an_unacceptable_accept_is_a_problem(
    anon: TestClient, db: Session, url: str
) -> None:
    b.letter(db, "l")
    db.commit()
    unknown = anon.get(_with(url, "format=xlsx"))
    assert unknown.status_code == 422 and unknown.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in unknown.json()["errors"]] == ["query.format"]
    for accept in (
        "text/html",
        "application/xml, text/plain;q=0.5",
        "text/csv;q=0, application/x-ndjson;q=0",
    ):
        refused = anon.get(url, headers={"Accept": accept})
        assert refused.status_code == 406, (url, accept)
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/not-acceptable") and "text/csv" in refused.json()["detail"]
    # What browsers and most clients send is JSON; an explicit format wins over `Accept`.
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert anon.get(url, headers={"Accept": browser}).headers["content-type"] == "application/json"
    assert anon.get(url, headers={"Accept": "text/*"}).headers["content-type"].startswith("text/csv")
    chosen = anon.get(_with(url, "format=ndjson"), headers={"Accept": "text/html"})
    assert chosen.headers["content-type"].startswith(NDJSON)
    excluded = anon.get(url, headers={"Accept": "application/json;q=0, */*"})
    assert excluded.headers["content-type"].startswith(CSV)


def test_a_formula_looking_cell_is_neutralised(client: TestClient, db: Session) -> None:
    letter = b.letter(db, "l")
    formula = '=HYPERLINK("https://example.org","click")'
    actor = b.actor(db, formula)
    b.sign(db, letter, actor)
    db.commit()
    assert client.post("/v1/letters/l/recipients", json={"actor_id": actor.id}).status_code == 201
    assert (
        client.post(
            "/v1/letters/l/sources", json={"url": "https://example.org/x", "label": "-1+1"}
        ).status_code
        == 201
    )
    actors = _csv_rows(client.get("/v1/actors?format=csv"))
    assert [row["name"] for row in actors] == ["'" + formula]
    recipients = _csv_rows(client.get("/v1/letters/l/recipients?format=csv"))
    assert [row["actor.name"] for row in recipients] == ["'" + formula]  # nested cells too
    assert [row["label"] for row in _csv_rows(client.get("/v1/letters/l/sources?format=csv"))] == ["'-1+1"]
    search = _csv_rows(client.get("/v1/search?q=hyperlink&format=csv"))
    assert [row["name"] for row in search] == ["'" + formula]
    # NDJSON is for machines: the value as it is.
    assert [line["name"] for line in _ndjson_lines(client.get("/v1/actors?format=ndjson"))] == [formula]


def test_an_empty_list_is_a_header_line_or_nothing(anon: TestClient, db: Session) -> None:
    b.letter(db, "l")
    db.commit()
    empty = anon.get("/v1/letters/l/claims?format=csv")
    fields = anon.get("/openapi.json").json()["components"]["schemas"]["ClaimOut"]["properties"]
    assert empty.status_code == 200 and empty.content.decode() == ",".join(fields) + "\r\n"
    assert anon.get("/v1/letters/l/claims?format=ndjson").content == b""


def test_the_api_document_says_which_answers_come_as_csv_and_ndjson(anon: TestClient) -> None:
    paths = anon.get("/openapi.json").json()["paths"]
    lists = _list_operations(anon)
    analytics = {
        "letter_counts",
        "letter_timeline",
        "campaign_timeline",
        "campaign_reach",
        "overlaps",
        "search",
    }
    seen = set()
    for operations in paths.values():
        get = operations.get("get")
        if get is None or get["operationId"] not in lists | analytics | {"list_changes"}:
            continue
        seen.add(get["operationId"])
        content = get["responses"]["200"]["content"]
        assert {"application/json", CSV, NDJSON} <= set(content), get["operationId"]
        assert "406" in get["responses"], get["operationId"]
        parameter = next(p for p in get["parameters"] if p["name"] == "format")
        assert parameter["in"] == "query"
    assert seen == lists | analytics | {"list_changes"}
