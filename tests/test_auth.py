"""Writes need a valid key with the right scope; reads are public. A walk over the route table
makes sure no write route forgets its guard."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import auth
from app.auth import hash_key, new_key
from app.models import ApiKey, ChangeRecord
from tests.conftest import Keys

READ_METHODS = {"GET", "HEAD", "OPTIONS"}
GUARDS: set[Callable[..., Any]] = {auth._writer, auth._admin}


def _problem_401(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


@pytest.fixture
def http(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


NEW = {"slug": "auth-check", "name": "Auth check"}


@pytest.mark.parametrize(
    "authorization",
    [
        None,  # missing
        "Bearer",  # no token
        "Bearer   ",
        "Basic dXNlcjpwYXNz",  # another scheme
        "Bearer not-a-key",  # malformed
        "Bearer us_",
        "Bearer us_abc",
        "Bearer us_0123456789ab_wrongsecret",  # well-formed, unknown
        "Token us_0123456789ab_secret",
    ],
    ids=["missing", "empty", "blank", "basic", "malformed", "prefix-only", "no-secret", "unknown", "scheme"],
)
def test_writes_without_a_valid_key_are_401(http: TestClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    _problem_401(http.post("/v1/campaigns", json=NEW, headers=headers))
    assert http.get("/v1/campaigns/auth-check").status_code == 404


def test_a_known_prefix_with_the_wrong_secret_is_401(http: TestClient, keys: Keys) -> None:
    prefix = keys.write.split("_")[1]
    _problem_401(
        http.post("/v1/campaigns", json=NEW, headers={"Authorization": f"Bearer us_{prefix}_wrongsecret"})
    )


def test_a_revoked_key_is_401(http: TestClient, db: Session) -> None:
    key, prefix = new_key()
    db.add(ApiKey(name="revoked-desk", prefix=prefix, key_hash=hash_key(key), scope="admin"))
    db.commit()
    ok = http.post("/v1/campaigns", json=NEW, headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 201

    row = db.scalars(select(ApiKey).where(ApiKey.name == "revoked-desk")).one()
    row.revoked_at = datetime.now(UTC)
    db.commit()
    response = http.post(
        "/v1/campaigns", json={"slug": "after", "name": "After"}, headers={"Authorization": f"Bearer {key}"}
    )
    _problem_401(response)
    assert "revoked" in response.json()["detail"]


def test_a_write_key_on_an_admin_route_is_403(client: TestClient, admin: TestClient) -> None:
    assert client.post("/v1/campaigns", json=NEW).status_code == 201
    response = client.delete("/v1/campaigns/auth-check")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "admin" in response.json()["detail"]
    assert client.get("/v1/campaigns/auth-check").status_code == 200
    assert admin.delete("/v1/campaigns/auth-check").status_code == 204


def test_reads_are_public_and_writes_record_the_key_name(
    http: TestClient, client: TestClient, keys: Keys, db: Session
) -> None:
    assert http.get("/v1/campaigns").status_code == 200
    assert client.post("/v1/campaigns", json=NEW).status_code == 201
    change = db.scalars(select(ChangeRecord).where(ChangeRecord.entity_key == "auth-check")).one()
    key_name = db.scalar(select(ApiKey.name).where(ApiKey.prefix == keys.write.split("_")[1]))
    assert change.key_name == key_name


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _write_routes(app: FastAPI) -> Iterator[tuple[str, set[str], Dependant | None]]:
    """(path, write methods, dependant) of every route with a method other than GET/HEAD/OPTIONS,
    including those of included routers (FastAPI resolves those lazily: walk the effective routes,
    whose dependant includes the router-level dependencies too)."""
    for context in iter_route_contexts(app.routes):
        writes = set(context.methods or ()) - READ_METHODS
        if writes:
            yield str(context.path), writes, getattr(context, "dependant", None)


def _guarded(dependant: Dependant | None) -> bool:
    return dependant is not None and any(call in GUARDS for call in _calls(dependant))


def test_every_write_route_is_guarded(app: FastAPI) -> None:
    """Any route answering a method other than GET/HEAD/OPTIONS depends on the write or admin
    guard of `app.auth` (through `WriteAccess` or `AdminAccess`)."""
    unguarded: list[str] = []
    checked = 0
    for path, methods, dependant in _write_routes(app):
        checked += 1
        if not _guarded(dependant):
            unguarded.append(f"{'/'.join(sorted(methods))} {path}")
    assert not unguarded, f"write routes without WriteAccess/AdminAccess: {unguarded}"
    assert checked >= 4, "the walk found no write routes; is it still looking at the right table?"


def test_the_walk_notices_an_unguarded_route(own_app: FastAPI) -> None:
    """The guard check itself works: a POST route without the guard is reported."""

    def open_door() -> dict[str, str]:
        return {"ok": "yes"}

    own_app.add_api_route("/v1/unguarded-test-route", open_door, methods=["POST"])
    found = [
        path
        for path, _, dependant in _write_routes(own_app)
        if path == "/v1/unguarded-test-route" and not _guarded(dependant)
    ]
    assert len(found) == 1
