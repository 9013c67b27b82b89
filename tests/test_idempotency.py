"""`Idempotency-Key` on POST: a retry with the same key and request replays the first answer and
writes nothing twice; the same key for another request is a 422."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Actor, ChangeRecord, IdempotencyRecord, Signature
from tests import builders as b

URL = "/v1/letters/l1/signatures/import"


def post(client: TestClient, body: bytes, key: str | None = None, url: str = URL) -> httpx.Response:
    headers = {"Content-Type": "text/csv"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(url, content=body, headers=headers)  # type: ignore[no-any-return]


def count(db: Session, model: type) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_retry_replays_the_first_answer_and_writes_once(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    first = post(client, b"name\nOnce\n", "abc")
    assert first.status_code == 200
    state = (count(db, Actor), count(db, Signature), count(db, ChangeRecord))
    for _ in range(2):
        again = post(client, b"name\nOnce\n", "abc")
        assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
        assert again.headers["content-type"] == first.headers["content-type"]
    assert (count(db, Actor), count(db, Signature), count(db, ChangeRecord)) == state
    record = db.scalars(select(IdempotencyRecord)).one()
    assert record.idempotency_key == "abc" and record.status_code == 200 and record.method == "POST"
    assert len(record.request_hash) == 64 and record.key_name.startswith("test-write-")


def test_same_key_for_another_request_is_422(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    b.letter(db, "l2")
    db.commit()
    assert post(client, b"name\nOnce\n", "abc").status_code == 200
    state = count(db, Signature)
    other_body = post(client, b"name\nTwice\n", "abc")
    assert other_body.status_code == 422
    assert other_body.headers["content-type"].startswith("application/problem+json")
    assert "Idempotency-Key" in other_body.json()["detail"]
    other_path = post(client, b"name\nOnce\n", "abc", url="/v1/letters/l2/signatures/import")
    assert other_path.status_code == 422
    assert count(db, Signature) == state


def test_without_a_key_nothing_is_stored(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    assert post(client, b"name\nOnce\n").json()["summary"]["created"] == 1
    assert post(client, b"name\nOnce\n").json()["summary"]["duplicate"] == 1
    assert count(db, IdempotencyRecord) == 0


def test_failed_requests_are_not_stored(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    assert post(client, b"name,kind\nX,robot\n", "k").status_code == 422
    assert count(db, IdempotencyRecord) == 0
    fixed = post(client, b"name,kind\nX,person\n", "k")
    assert fixed.status_code == 200 and "idempotent-replayed" not in fixed.headers


def test_keys_are_per_api_key(client: TestClient, admin: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    assert post(client, b"name\nOnce\n", "shared").json()["summary"]["created"] == 1
    other = post(admin, b"name\nOnce\n", "shared")
    assert "idempotent-replayed" not in other.headers and other.json()["summary"]["duplicate"] == 1


def test_bad_keys_are_422(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    assert post(client, b"name\nOnce\n", "x" * 301).status_code == 422
    assert post(client, b"name\nOnce\n", "  ").status_code == 422


# Every POST route of the API with a body that creates one thing (the import has its own tests).
CREATES = [
    ("/v1/letters", {"slug": "new", "title": "New"}),
    ("/v1/letters/l1/signatures", {"actor": {"kind": "person", "name": "Retry Me"}}),
    ("/v1/letters/l1/recipients", {"actor": {"kind": "organisation", "name": "An Embassy"}}),
    ("/v1/letters/l1/events", {"date": "2020-09-10", "kind": "delivered"}),
    ("/v1/letters/l1/claims", {"count": 130}),
    ("/v1/letters/l1/sources", {"url": "https://example.org/letter"}),
    ("/v1/actors", {"kind": "person", "name": "Ada Retry"}),
    ("/v1/actors/{member}/memberships", {"body": "house", "start_date": "2020-01-01"}),
    ("/v1/bodies", {"slug": "senate", "name": "Senate"}),
    ("/v1/parties", {"slug": "green", "name": "Green"}),
    ("/v1/campaigns", {"slug": "once", "name": "Once"}),
]


@pytest.mark.parametrize(("path", "body"), CREATES, ids=[path for path, _ in CREATES])
def test_every_create_replays_a_retry_and_writes_once(
    client: TestClient, db: Session, path: str, body: dict[str, object]
) -> None:
    b.letter(db, "l1")
    b.body(db, "house")
    member = b.actor(db, "Member", kind="person")
    db.commit()
    url = path.format(member=member.id)
    headers = {"Idempotency-Key": f"retry-{path}"}
    first = client.post(url, json=body, headers=headers)
    assert first.status_code == 201, first.text
    writes = count(db, ChangeRecord)
    again = client.post(url, json=body, headers=headers)
    assert (again.status_code, again.json(), again.headers["location"]) == (
        201,
        first.json(),
        first.headers["location"],
    )
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert count(db, ChangeRecord) == writes
    other = client.post(f"{url}?again=1", json=body, headers=headers)  # another request
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    assert count(db, ChangeRecord) == writes


# POSTs that act on what exists (200, not 201): a retry replays the first answer too.
ACTIONS = [
    ("/v1/actors/{keep}/merge", {"merge": ["{other}"]}),
    ("/v1/letters/l1/signatures/{other}/retract", {"reason": "signed by mistake"}),
    ("/v1/review/possible-duplicates", {"actors": ["{keep}", "{other}"], "decision": "distinct"}),
]


@pytest.mark.parametrize(("path", "body"), ACTIONS, ids=[path for path, _ in ACTIONS])
def test_every_action_replays_a_retry_and_writes_once(
    client: TestClient, db: Session, path: str, body: dict[str, object]
) -> None:
    letter = b.letter(db, "l1")
    keep, other = b.actor(db, "Keep", kind="person"), b.actor(db, "Other", kind="person")
    b.sign(db, letter, other)
    db.commit()
    ids = {"keep": keep.id, "other": other.id}
    url = path.format(**ids)
    data = json.loads(json.dumps(body).replace('"{keep}"', str(keep.id)).replace('"{other}"', str(other.id)))
    headers = {"Idempotency-Key": f"retry-{path}"}
    first = client.post(url, json=data, headers=headers)
    assert first.status_code == 200, first.text
    writes = count(db, ChangeRecord)
    again = client.post(url, json=data, headers=headers)
    assert (again.status_code, again.json()) == (200, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(db, ChangeRecord) == writes


def test_every_post_operation_documents_the_header(anon: TestClient) -> None:
    operations = anon.get("/openapi.json").json()["paths"]
    posts = {path: ops["post"] for path, ops in operations.items() if "post" in ops}
    # and the import; and creating and testing a webhook (admin: in tests/test_webhooks.py)
    assert len(posts) == len(CREATES) + 3 + len(ACTIONS)
    for path, operation in posts.items():
        headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
        assert headers == ["Idempotency-Key"], path
