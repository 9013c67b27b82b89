"""Every list of the API pages the same way (`app.pagination.Pager`): `limit` items, a
`next_cursor`, and a `Link: <…>; rel="next"` header that leads to the next page until the last,
which has neither. And the three kinds of a letter's parts (events, claims, sources) are served
by one set of endpoints, each under its own names."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import WebhookDelivery
from tests import builders as b

DAY = date(2020, 9, 9)


def _list_operations(client: TestClient) -> set[str]:
    """The operation ids of the GETs whose answer is a page (`{items, next_cursor}`)."""
    paths = client.get("/openapi.json").json()["paths"]
    found = set()
    for operations in paths.values():
        get = operations.get("get")
        if get is None:
            continue
        schema = get["responses"]["200"].get("content", {}).get("application/json", {}).get("schema", {})
        if schema.get("$ref", "").startswith("#/components/schemas/Page_"):
            found.add(get["operationId"])
    return found


def _registry(db: Session, client: TestClient, admin: TestClient) -> dict[str, str]:
    """Two or more items in every list; the URL of each list by its operation id."""
    campaign = b.campaign(db, "c")
    b.campaign(db, "d")
    letters = [b.letter(db, "a", campaign=campaign), b.letter(db, "b", campaign=campaign), b.letter(db, "r")]
    # One name three times: three pairs for the review queue.
    ada, ada_again, ada_third = (b.actor(db, "Ada Lovelace") for _ in range(3))
    grace = b.actor(db, "Grace Hopper")  # edited twice: two change records
    house, lords = b.body(db, "house"), b.body(db, "lords")
    b.party(db, "left")
    b.membership(db, ada, house, b.party(db, "right"), DAY)
    b.membership(db, ada, lords, None, date(2021, 1, 1))
    for letter in letters:
        for actor in (ada, ada_again, ada_third):
            b.sign(db, letter, actor, signed_on=DAY)
    db.commit()
    for actor in (ada, ada_again):
        retract = client.post(f"/v1/letters/r/signatures/{actor.id}/retract", json={"reason": "a mistake"})
        assert retract.status_code == 200, retract.text
    for slug in ("a", "b"):
        assert client.post(f"/v1/letters/{slug}/recipients", json={"actor_id": ada.id}).status_code == 201
    assert client.post("/v1/letters/a/recipients", json={"actor_id": ada_third.id}).status_code == 201
    for n in (1, 2):
        parts = {
            "events": {"date": f"2020-09-1{n}", "kind": "other"},
            "claims": {"count": 100 + n},
            "sources": {"url": f"https://example.org/{n}"},
        }
        for collection, body in parts.items():
            assert client.post(f"/v1/letters/a/{collection}", json=body).status_code == 201
        assert (
            client.patch(f"/v1/actors/{grace.id}", json={"country": "GB" if n == 1 else "FR"}).status_code
            == 200
        )
        hook = admin.post("/v1/webhooks", json={"url": f"https://example.org/hook{n}"})
        assert hook.status_code == 201, hook.text
    webhook = hook.json()["id"]
    for attempt in (1, 2):
        db.add(
            WebhookDelivery(
                webhook_id=webhook,
                event_id=attempt,
                event_type="webhook.test",
                attempt=attempt,
                succeeded=True,
                status_code=200,
                duration_ms=5,
            )
        )
    db.commit()
    return {
        "list_letters": "/v1/letters",
        "list_signatures": "/v1/letters/a/signatures",
        "list_retractions": "/v1/letters/r/retractions",
        "list_recipients": "/v1/letters/a/recipients",
        "list_letter_events": "/v1/letters/a/events",
        "list_claims": "/v1/letters/a/claims",
        "list_sources": "/v1/letters/a/sources",
        "list_campaigns": "/v1/campaigns",
        "list_actors": "/v1/actors",
        "list_actor_signatures": f"/v1/actors/{ada.id}/signatures",
        "list_actor_letters_received": f"/v1/actors/{ada.id}/letters-received",
        "list_memberships": f"/v1/actors/{ada.id}/memberships",
        "list_actor_history": f"/v1/actors/{grace.id}/history",
        "actor_co_signatories": f"/v1/actors/{ada.id}/co-signatories",
        "list_possible_duplicates": "/v1/review/possible-duplicates",
        "list_bodies": "/v1/bodies",
        "list_parties": "/v1/parties",
        "overlap_signatories": "/v1/overlaps/signatories?letters=a,b",
        "list_webhooks": "/v1/webhooks",
        "list_webhook_deliveries": f"/v1/webhooks/{webhook}/deliveries",
    }


def _walk(client: TestClient, url: str) -> list[Any]:
    """Every item of a list, a page of one at a time, following the `Link` headers."""
    first = f"{url}{'&' if '?' in url else '?'}limit=1"
    items: list[Any] = []
    next_url: str | None = first
    while next_url is not None:
        r = client.get(next_url)
        assert r.status_code == 200, (next_url, r.text)
        page = r.json()
        assert set(page) == {"items", "next_cursor"} and len(page["items"]) == 1, next_url
        items += page["items"]
        link = r.headers.get("link")
        if page["next_cursor"] is None:
            assert link is None, next_url
            next_url = None
            continue
        assert link is not None and link.startswith("<") and link.endswith('>; rel="next"'), next_url
        target = urlsplit(link[1 : -len('>; rel="next"')])
        assert target.path == urlsplit(url).path and f"cursor={page['next_cursor']}" in target.query
        next_url = f"{target.path}?{target.query}"
        assert len(items) < 50, url  # the walk ends
    return items


def test_every_list_pages_with_a_link_to_the_next_page(
    client: TestClient, admin: TestClient, db: Session
) -> None:
    urls = _registry(db, client, admin)
    assert set(urls) == _list_operations(admin)  # a new list joins this test
    for operation, url in urls.items():
        items = _walk(admin, url)
        assert len(items) >= 2, operation
        assert all(items[i] != items[i + 1] for i in range(len(items) - 1)), operation
        whole = admin.get(f"{url}{'&' if '?' in url else '?'}limit=1000").json()
        assert whole == {"items": items, "next_cursor": None}, operation


@pytest.mark.parametrize(
    ("collection", "id_name", "body"),
    [
        ("events", "event_id", {"date": "2020-09-10", "kind": "delivered"}),
        ("claims", "claim_id", {"count": 130}),
        ("sources", "source_id", {"url": "https://example.org/letter"}),
    ],
)
def test_each_kind_of_part_keeps_its_names(
    client: TestClient, db: Session, collection: str, id_name: str, body: dict[str, Any]
) -> None:
    b.letter(db, "l")
    db.commit()
    made = client.post(f"/v1/letters/l/{collection}", json=body)
    assert made.status_code == 201
    assert made.headers["location"] == f"/v1/letters/l/{collection}/{made.json()['id']}"
    assert client.get(made.headers["location"]).json() == made.json()
    bad = client.get(f"/v1/letters/l/{collection}/first")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == f"path.{id_name}"
    missing = client.get(f"/v1/letters/l/{collection}/{made.json()['id'] + 1000}")
    assert missing.status_code == 404 and collection[:-1] in missing.json()["detail"]
    other = client.post(f"/v1/letters/l/{collection}", json={**body, "unknown": 1})
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "body.unknown"
