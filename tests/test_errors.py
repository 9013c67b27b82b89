"""Every error status renders one shape: RFC 9457 `application/problem+json` with `type`,
`title`, `status` and `detail` (and the failing field for a 422)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.conftest import Keys


@dataclass
class Case:
    status: int
    method: str
    path: str
    who: str = "anon"  # anon | client (write key) | admin
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    before: Callable[[TestClient], object] | None = None
    field: str | None = None  # for a 422: the field that must be named


def _campaign(slug: str) -> Callable[[TestClient], object]:
    return lambda c: c.post("/v1/campaigns", json={"slug": slug, "name": slug})


CASES = {
    "404-unknown-route": Case(404, "GET", "/v1/no-such-thing"),
    "404-unknown-campaign": Case(404, "GET", "/v1/campaigns/no-such-campaign"),
    "404-unknown-letter": Case(404, "GET", "/v1/letters/no-such-letter"),
    "405-method-not-allowed": Case(405, "PUT", "/v1/campaigns/anything", who="client", json={}),
    "409-duplicate-slug": Case(
        409,
        "POST",
        "/v1/campaigns",
        who="client",
        json={"slug": "twice", "name": "Twice"},
        before=_campaign("twice"),
    ),
    "422-bad-slug": Case(
        422,
        "POST",
        "/v1/campaigns",
        who="client",
        json={"slug": "Not a slug!", "name": "X"},
        field="body.slug",
    ),
    "422-missing-field": Case(
        422, "POST", "/v1/campaigns", who="client", json={"slug": "x"}, field="body.name"
    ),
    "422-bad-query": Case(422, "GET", "/v1/campaigns?limit=0", field="query.limit"),
    "422-not-json": Case(
        422,
        "POST",
        "/v1/campaigns",
        who="client",
        json=None,
        headers={"Content-Type": "application/json"},
    ),
    "401-no-key": Case(401, "POST", "/v1/campaigns", json={"slug": "k", "name": "K"}),
    "401-bad-key": Case(
        401,
        "POST",
        "/v1/campaigns",
        json={"slug": "k", "name": "K"},
        headers={"Authorization": "Bearer us_0000_nope"},
    ),
    "403-write-key-on-admin-route": Case(
        403, "DELETE", "/v1/campaigns/gone", who="client", before=_campaign("gone")
    ),
}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.mark.parametrize("name", list(CASES))
def test_error_renders_problem_json(name: str, app: FastAPI, keys: Keys) -> None:
    case = CASES[name]
    key = {"anon": None, "client": keys.write, "admin": keys.admin}[case.who]
    with TestClient(app, headers={"Authorization": f"Bearer {key}"} if key else {}) as http:
        if case.before is not None:
            case.before(http)
        kwargs: dict[str, Any] = {"headers": case.headers}
        if case.json is not None:
            kwargs["json"] = case.json
        elif name == "422-not-json":
            kwargs["content"] = b"{not json"
        response = http.request(case.method, case.path, **kwargs)
    body = assert_problem(response, case.status)
    if case.status == 401:
        assert response.headers["www-authenticate"].lower().startswith("bearer")
    if case.field:
        fields = [e["field"] for e in body["errors"]]
        assert case.field in fields, fields
        assert case.field in body["detail"]


@pytest.fixture
def small_app(app: FastAPI, settings: Settings) -> Iterator[TestClient]:
    """The app with a 2 KiB body limit, sharing the test's database transaction."""
    limited = create_app(
        Settings(database_url=settings.database_url, max_body_bytes=2048), database=app.state.database
    )
    with TestClient(limited) as http:
        yield http


def test_413_for_a_declared_body_over_the_limit(small_app: TestClient) -> None:
    big = {"slug": "big", "name": "x", "description": "y" * 4000}
    body = assert_problem(small_app.post("/v1/campaigns", json=big), 413)
    assert "2048" in body["detail"]


def test_a_body_under_the_limit_goes_through(small_app: TestClient, keys: Keys) -> None:
    response = small_app.post(
        "/v1/campaigns",
        json={"slug": "small", "name": "Small"},
        headers={"Authorization": f"Bearer {keys.write}"},
    )
    assert response.status_code == 201, response.text
