"""The changes feed: every change once, in commit order, typed, filtered, as JSON pages or
streamed CSV/NDJSON; and (PostgreSQL) never a cursor past a transaction still in progress."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth import Writer
from app.changes import record_change
from app.config import Settings
from app.db.database import Database
from app.db.engine import create_engine_for
from app.main import create_app
from app.models import OutboxEvent
from app.webhooks import events


def _all(client: TestClient, query: str = "", limit: int = 3) -> tuple[list[dict[str, Any]], str]:
    """Every change, page by page (following the cursor until nothing more is ready)."""
    seen: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = client.get(f"/v1/changes?limit={limit}{query}{cursor}")
        assert page.status_code == 200, page.text
        body = page.json()
        seen += body["items"]
        assert ("link" in page.headers) == body["has_more"]
        if not body["has_more"]:
            return seen, body["next_cursor"]
        cursor = f"&cursor={body['next_cursor']}"


def test_every_write_is_one_typed_change_with_its_url_and_state(client: TestClient) -> None:
    client.post("/v1/letters", json={"slug": "feed", "title": "Feed", "published_on": "2024-03-01"})
    made = client.post("/v1/letters/feed/signatures", json={"actor": {"kind": "person", "name": "Ada"}})
    actor_id = made.json()["actor"]["id"]
    client.delete(f"/v1/letters/feed/signatures/{actor_id}?on=2024-03-02")
    client.patch("/v1/letters/feed", json={"title": "Feed, again"})
    items, _ = _all(client)
    types = [i["type"] for i in items]
    assert types == [
        "letter.created",
        "actor.created",
        "signature.created",
        "signature.withdrawn",
        "letter.updated",
    ]
    withdrawn = items[3]
    assert withdrawn["letter"] == "feed"
    assert withdrawn["url"] == f"http://testserver/v1/letters/feed/signatures/{actor_id}"
    assert (
        withdrawn["state"]["withdrawn_on"] == "2024-03-02" and withdrawn["previous"]["withdrawn_on"] is None
    )
    assert items[4]["state"]["title"] == "Feed, again"
    assert [i["id"] for i in items] == sorted(i["id"] for i in items)


def test_the_stored_cursor_sees_each_later_change_exactly_once(client: TestClient) -> None:
    client.post("/v1/letters", json={"slug": "once", "title": "Once"})
    first, cursor = _all(client)
    assert client.get(f"/v1/changes?cursor={cursor}").json() == {
        "items": [],
        "next_cursor": cursor,
        "has_more": False,
    }
    for n in range(5):
        client.post("/v1/letters/once/events", json={"date": f"2024-01-0{n + 1}", "kind": "other"})
    later = client.get(f"/v1/changes?cursor={cursor}&limit=2")
    ids = [i["id"] for i in later.json()["items"]]
    rest, _ = _all(client, f"&cursor={later.json()['next_cursor']}", limit=2)
    ids += [i["id"] for i in rest]
    assert len(ids) == len(set(ids)) == 5
    assert not set(ids) & {i["id"] for i in first}


def test_filters_by_type_pattern_and_letter(client: TestClient) -> None:
    for slug in ("a", "b"):
        client.post("/v1/letters", json={"slug": slug, "title": slug.upper()})
        client.post(f"/v1/letters/{slug}/signatures", json={"actor": {"kind": "person", "name": f"P {slug}"}})
    of_a, _ = _all(client, "&letter=a")
    assert [(i["type"], i["letter"]) for i in of_a] == [("letter.created", "a"), ("signature.created", "a")]
    signatures, _ = _all(client, "&type=signature.*")
    assert [i["letter"] for i in signatures] == ["a", "b"]
    both, _ = _all(client, "&type=letter.created,actor.created")
    assert [i["type"] for i in both] == ["letter.created", "actor.created"] * 2
    bad = client.get("/v1/changes?type=letter.exploded")
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert "letter.exploded" in bad.json()["detail"]
    assert client.get("/v1/changes?cursor=nonsense").status_code == 422


def test_from_latest_starts_after_everything_so_far(client: TestClient) -> None:
    client.post("/v1/letters", json={"slug": "old", "title": "Old"})
    now = client.get("/v1/changes?from=latest").json()
    assert now["items"] == []
    client.post("/v1/letters", json={"slug": "new", "title": "New"})
    after = client.get(f"/v1/changes?cursor={now['next_cursor']}").json()["items"]
    assert [i["key"] for i in after] == ["new"]


def test_csv_and_ndjson_stream_the_same_changes(client: TestClient) -> None:
    client.post("/v1/letters", json={"slug": "exp", "title": 'Export, "quoted"'})
    client.post("/v1/letters/exp/sources", json={"label": "Site", "url": "https://example.org/"})
    pages, _ = _all(client)
    ndjson = client.get("/v1/changes?format=ndjson")
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in ndjson.text.splitlines()]
    assert lines == pages
    table = client.get("/v1/changes", headers={"Accept": "text/csv"})
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [r["type"] for r in rows] == ["letter.created", "source.created"]
    assert json.loads(rows[0]["state"])["title"] == 'Export, "quoted"'
    resume = table.headers["x-next-cursor"]
    assert client.get(f"/v1/changes?cursor={resume}").json()["items"] == []


def test_milestones_are_changes_once_each(client: TestClient, admin: TestClient) -> None:
    hook = admin.post("/v1/webhooks", json={"url": "https://example.org/hook", "milestones": [2, 3]})
    assert hook.status_code == 201, hook.text
    client.post("/v1/letters", json={"slug": "m", "title": "M", "published_on": "2024-03-01"})
    made = [
        client.post("/v1/letters/m/signatures", json={"actor": {"kind": "person", "name": f"M{n}"}}).json()
        for n in range(3)
    ]
    client.delete(f"/v1/letters/m/signatures/{made[2]['actor']['id']}?on=2024-03-02")
    client.post("/v1/letters/m/signatures", json={"actor": {"kind": "person", "name": "M again"}})
    milestones, _ = _all(client, "&type=letter.milestone")
    assert [(i["state"]["milestone"], i["state"]["recorded"]) for i in milestones] == [(2, 2), (3, 3)]
    assert milestones[0]["url"] == "http://testserver/v1/letters/m"


def test_an_import_is_one_signatures_imported_change_and_passes_milestones(client: TestClient) -> None:
    client.post("/v1/letters", json={"slug": "imp", "title": "Imp", "published_on": "2024-03-01"})
    rows = "name,kind\n" + "".join(f"Org {n},organisation\n" for n in range(12))
    done = client.post(
        "/v1/letters/imp/signatures/import", content=rows, headers={"Content-Type": "text/csv"}
    )
    assert done.status_code == 200, done.text
    items, _ = _all(client, "&letter=imp", limit=50)
    assert [i["type"] for i in items] == ["letter.created", "signatures.imported", "letter.milestone"]
    imported = items[1]
    assert imported["state"]["summary"]["created"] == 12
    assert imported["url"] == "http://testserver/v1/letters/imp/signatures"
    assert items[2]["state"] == {"letter": "imp", "milestone": 10, "recorded": 12}


def test_webhook_changes_and_tests_stay_out_of_the_public_feed(admin: TestClient, anon: TestClient) -> None:
    hook = admin.post("/v1/webhooks", json={"url": "https://example.org/private"}).json()
    admin.patch(f"/v1/webhooks/{hook['id']}", json={"description": "x"})
    admin.post(f"/v1/webhooks/{hook['id']}/test")
    body = anon.get("/v1/changes").json()
    assert body["items"] == []
    assert "example.org" not in json.dumps(body)


def test_event_types_follow_entity_and_action_generically() -> None:
    assert events.event_type("actor", "merge") == "actor.merged"
    assert events.event_type("signature", "move") == "signature.moved"
    assert events.event_type("signature", "retract") == "signature.retracted"
    assert events.event_type("alias", "attach") == "alias.attached"
    assert events.check_type_patterns(["actor.merged", "signature.*", "*"]) is None


# --- the outbox gap (PostgreSQL) ---------------------------------------------------------------


def test_a_page_never_passes_a_transaction_still_in_progress(
    backend: str, migrated_database_url: str, tmp_path: Path
) -> None:
    """A transaction writes a change (taking the lower id) and stays open; a later one commits.
    The feed hands out nothing past the open one until it commits, then both, each once."""
    if backend != "postgresql":
        pytest.skip("SQLite commits one writer at a time, in id order")
    settings = Settings(database_url=migrated_database_url, webhook_worker=False)
    database = Database(create_engine_for(settings))
    try:
        open_session = Session(database.engine)
        writer = Writer(session=open_session, key_name="slow", scope="write")
        record_change(open_session, writer.key_name, "create", "campaign", "slow", after={"slug": "slow"})
        open_session.flush()  # it holds the lower event id, uncommitted
        early = open_session.scalar(OutboxEvent.__table__.select().with_only_columns(OutboxEvent.id))
        with TestClient(create_app(settings, database=database)) as reader:
            with Session(database.engine) as fast:
                record_change(fast, "fast", "create", "campaign", "fast", after={"slug": "fast"})
                fast.commit()
            page = reader.get("/v1/changes").json()
            assert page["items"] == []  # the fast one waits behind the open one
            cursor = page["next_cursor"]
            open_session.commit()
            items = reader.get(f"/v1/changes?cursor={cursor}").json()["items"]
            assert [i["key"] for i in items] == ["slow", "fast"]
            assert items[0]["id"] == early and items[1]["id"] > early
            again = reader.get(f"/v1/changes?cursor={reader.get('/v1/changes').json()['next_cursor']}")
            assert again.json()["items"] == []
        open_session.close()
    finally:
        database.dispose()
