"""`Idempotency-Key` on POST: a retry with the same key and request replays the first answer and
writes nothing twice; the same key for another request is a 422."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth import WriteAccess
from app.campaigns import service as campaigns
from app.campaigns.schemas import CampaignCreate
from app.idempotency import IdempotencyKey
from app.models import Actor, Campaign, ChangeRecord, IdempotencyRecord, Signature
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
    assert post(client, b"name,signed_on\nX,never\n", "k").status_code == 422
    assert count(db, IdempotencyRecord) == 0
    fixed = post(client, b"name,signed_on\nX,2020-09-09\n", "k")
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


def test_any_post_route_can_adopt_it(app: FastAPI, client: TestClient, db: Session) -> None:
    """The helper on a create route: the replay keeps the 201 and the Location header."""
    router = APIRouter()

    @router.post("/test-idempotent-campaigns", status_code=201)
    def create(data: CampaignCreate, writer: WriteAccess, idem: IdempotencyKey) -> Response:
        if (replay := idem.replay(writer)) is not None:
            return replay
        campaign = campaigns.create_campaign(writer, data)
        response = JSONResponse(
            {"slug": campaign.slug, "id": campaign.id},
            status_code=201,
            headers={"Location": f"/v1/campaigns/{campaign.slug}"},
        )
        return idem.store(writer, response)

    app.include_router(router)
    headers = {"Idempotency-Key": "c-1"}
    first = client.post("/test-idempotent-campaigns", json={"slug": "once", "name": "Once"}, headers=headers)
    again = client.post("/test-idempotent-campaigns", json={"slug": "once", "name": "Once"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert (
        again.headers["location"] == "/v1/campaigns/once" and again.headers["idempotent-replayed"] == "true"
    )
    assert again.json() == first.json()
    assert count(db, Campaign) == 1
    # Without the key, the second create is the usual duplicate.
    assert client.post("/test-idempotent-campaigns", json={"slug": "once", "name": "Once"}).status_code == 409
